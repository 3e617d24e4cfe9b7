"""Configuration: one nameko ``config.yaml`` per service, values from the environment.

Each service's ``config.yaml`` writes ``${VAR:default}`` (nameko's own syntax) and the
defaults run on a laptop. The keys every service reads are named here, once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

AMQP_URI = "AMQP_URI"
DATABASE_URL = "DATABASE_URL"
# host:port of the /metrics, /healthz and /readyz server; empty for none (the gateway
# serves them on its own HTTP port).
OPS_ADDRESS = "OPS_ADDRESS"
OUTBOX_SWEEP_SECONDS = "OUTBOX_SWEEP_SECONDS"
RPC_TIMEOUT_SECONDS = "RPC_TIMEOUT_SECONDS"
# which clock a process reads (mercato.clock): "system" or "controllable" (the test clock)
MERCATO_CLOCK = "MERCATO_CLOCK"
# where a controllable clock starts (RFC 3339) when its database holds no offset yet
MERCATO_CLOCK_START = "MERCATO_CLOCK_START"
# "development" or "production": production refuses what only tests may do
MERCATO_ENVIRONMENT = "MERCATO_ENVIRONMENT"
# the secret key(s) that sign and verify the caller context (mercato.identity): the same
# in every Mercato process, in no one else's hands
MERCATO_CONTEXT_KEY = "MERCATO_CONTEXT_KEY"

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"

ROOT = Path(__file__).resolve().parents[2]


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a service's config.yaml the way ``nameko run --config`` does."""
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(path) as handle:
        return yaml.safe_load(handle) or {}
