from gateway.models import metadata
from mercato.migrations import run_env

run_env(metadata)
