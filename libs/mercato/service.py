"""What every Mercato nameko service has, whatever it owns.

::

    class CatalogService(MercatoService):
        name = "catalog"
        db = Database(metadata)

gives the service its metrics, health and log context (``observability``), its caller's
identity (``caller``) and a ``ping`` RPC that other services and probes use to see
that it answers on the bus.
"""

from mercato.identity import Caller
from mercato.metrics import Observability
from mercato.transport import rpc


class MercatoService:
    name: str

    observability = Observability()
    caller = Caller()

    @rpc
    def ping(self) -> dict[str, str]:
        return {"service": self.name, "status": "ok"}
