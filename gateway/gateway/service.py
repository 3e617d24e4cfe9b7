"""The gateway's service: the public API (docs/api.md) and its operations endpoints.

Its routes are declared once, in ``gateway.routes``; ``routing.serves`` gives the class
an ``@http`` entrypoint per declaration, each one glue: authenticate (and check the
role), read and validate the body or query with the contract's schema, call one
service, answer what its answer schema documents. Failures are raised, and
``web.GatewayHttp`` answers them with the status of ``errors.mapped_errors``.
"""

from __future__ import annotations

from nameko.events import BROADCAST, event_handler
from nameko.timer import timer

from gateway import probes
from gateway.attachments import ObjectStoreProvider
from gateway.auth import Authentication
from gateway.idempotency import Idempotency
from gateway.models import metadata
from gateway.product_cache import ProductCacheProvider
from gateway.ratelimits import RateLimits
from gateway.routes import ROUTES
from gateway.routing import serves
from gateway.settings import SettingsProvider
from mercato.db import Database
from mercato.service import MercatoService
from mercato.transport import TimedRpcProxy

PURGE_INTERVAL_SECONDS = 600


@serves(ROUTES)
class GatewayService(MercatoService):
    """The public API. Dependencies: ``iam_agency`` answers who a token belongs to and
    owns accounts; ``catalog``, ``orders``, ``billing``, ``provisioning`` and
    ``supervision`` own what their names say (every service also keeps the test clock);
    ``object_store`` keeps attachments' bytes; ``auth`` keeps validated tokens briefly;
    ``idempotency`` keeps the answers to POSTs that carried an Idempotency-Key, and
    ``rate_limits`` counts sign-ins and sign-ups, in ``db``."""

    name = "gateway"

    db = Database(metadata)
    iam_agency = TimedRpcProxy("iam_agency")
    catalog = TimedRpcProxy("catalog")
    # outside orders' own budget for billing (docs/operations.md, "Timeouts")
    orders = TimedRpcProxy("orders", timeout=15.0, setting="GATEWAY_ORDERS_TIMEOUT_SECONDS")
    billing = TimedRpcProxy("billing")
    provisioning = TimedRpcProxy("provisioning")
    supervision = TimedRpcProxy("supervision")
    # /readyz must answer quickly even when iam-agency does not
    iam_probe = TimedRpcProxy("iam_agency", timeout=probes.IAM_PING_TIMEOUT_SECONDS)
    last_readiness = probes.LastReport()
    settings = SettingsProvider()
    auth = Authentication()
    idempotency = Idempotency()
    # sign-in and sign-up attempts, per email and per client address, in ``db``
    rate_limits = RateLimits()
    # published products' details, dropped when catalog announces a change
    products = ProductCacheProvider()
    # attachments' bytes (supervision keeps what they are)
    object_store = ObjectStoreProvider()

    @event_handler(
        "catalog", "catalog.product.changed", handler_type=BROADCAST, reliable_delivery=False
    )
    def forget_changed_product(self, event: dict) -> None:
        """Every replica drops its copy of a product that changed (delisted, …)."""
        self.products.forget(event["subject"])

    @event_handler(
        "catalog", "catalog.product.published", handler_type=BROADCAST, reliable_delivery=False
    )
    def forget_published_product(self, event: dict) -> None:
        self.products.forget(event["subject"])

    @timer(interval=PURGE_INTERVAL_SECONDS)
    def purge_idempotency_records(self) -> None:
        """Delete idempotency records past their TTL and the rate limits' ended windows
        (safe on every replica at once)."""
        self.idempotency.purge()
        self.rate_limits.purge()
