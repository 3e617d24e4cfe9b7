"""The catalog service: entrypoints only (see DESIGN.md for what it owns)."""

from mercato.db import Database
from mercato.service import MercatoService

from catalog.models import metadata


class CatalogService(MercatoService):
    name = "catalog"

    db = Database(metadata)
