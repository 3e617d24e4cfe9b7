"""The catalog service: entrypoints only (see DESIGN.md for what it owns)."""

from catalog.models import metadata
from mercato.db import Database
from mercato.service import MercatoService


class CatalogService(MercatoService):
    name = "catalog"

    db = Database(metadata)
