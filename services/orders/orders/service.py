"""The orders service: entrypoints only (see DESIGN.md for what it owns)."""

from mercato.db import Database
from mercato.service import MercatoService
from orders.models import metadata


class OrdersService(MercatoService):
    name = "orders"

    db = Database(metadata)
