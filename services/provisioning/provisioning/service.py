"""The provisioning service: entrypoints only (see DESIGN.md for what it owns)."""

from mercato.db import Database
from mercato.service import MercatoService
from provisioning.models import metadata


class ProvisioningService(MercatoService):
    name = "provisioning"

    db = Database(metadata)
