"""``python -m mercato_subscribers``."""

import sys

from mercato_subscribers import main

sys.exit(main())
