"""``python -m mercato_devrun``."""

import sys

from mercato_devrun import main

sys.exit(main())
