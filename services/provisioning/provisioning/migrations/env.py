from mercato.migrations import run_env
from provisioning.models import metadata

run_env(metadata)
