"""The billing service: entrypoints only (see DESIGN.md for what it owns)."""

from billing.models import metadata
from mercato.db import Database
from mercato.service import MercatoService


class BillingService(MercatoService):
    name = "billing"

    db = Database(metadata)
