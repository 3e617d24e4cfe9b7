from mercato.migrations import run_env
from orders.models import metadata

run_env(metadata)
