"""The supervision service: entrypoints only (see DESIGN.md for what it owns)."""

from mercato.db import Database
from mercato.service import MercatoService
from supervision.models import metadata


class SupervisionService(MercatoService):
    name = "supervision"

    db = Database(metadata)
