from mercato.migrations import run_env
from supervision.models import metadata

run_env(metadata)
