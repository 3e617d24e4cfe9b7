from iam_agency.models import metadata
from mercato.migrations import run_env

run_env(metadata)
