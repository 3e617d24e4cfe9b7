"""The billing service: entrypoints only (see DESIGN.md for what it owns)."""

from mercato.db import Database
from mercato.service import MercatoService

from billing.models import metadata


class BillingService(MercatoService):
    name = "billing"

    db = Database(metadata)
