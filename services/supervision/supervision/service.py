"""The supervision service: entrypoints only (docs/architecture.md says what it will own)."""

from mercato.db import Database
from mercato.service import MercatoService
from supervision.models import metadata
from supervision.repository import REPOSITORIES


class SupervisionService(MercatoService):
    name = "supervision"

    db = Database(metadata, repositories=REPOSITORIES)
