"""Billing's nameko dependencies: the card provider."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from billing.payment_gateway import HttpCardGateway, PaymentGateway

CARD_GATEWAY_URL = "CARD_GATEWAY_URL"
CARD_GATEWAY_TIMEOUT_SECONDS = "CARD_GATEWAY_TIMEOUT_SECONDS"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8500"
# The innermost of the nested budgets (docs/operations.md, "Timeouts"): a card the
# provider is slow with is left pending well before orders stops waiting for billing
# (ORDERS_BILLING_TIMEOUT_SECONDS, 8 s), so the buyer gets the pending payment, not a 503.
DEFAULT_GATEWAY_TIMEOUT_SECONDS = 4.0


class CardGateway(DependencyProvider):
    """Injects the card provider's driver (``HttpCardGateway`` at ``CARD_GATEWAY_URL``),
    every call bounded by ``CARD_GATEWAY_TIMEOUT_SECONDS``; one per container, its HTTP
    connections reused."""

    def __init__(self) -> None:
        self.gateway: PaymentGateway | None = None

    def setup(self) -> None:
        config = self.container.config
        url = str(config.get(CARD_GATEWAY_URL) or DEFAULT_GATEWAY_URL)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{CARD_GATEWAY_URL} must be an http(s) URL, not {url!r}")
        timeout = float(config.get(CARD_GATEWAY_TIMEOUT_SECONDS) or DEFAULT_GATEWAY_TIMEOUT_SECONDS)
        self.gateway = HttpCardGateway(url, timeout)

    def get_dependency(self, worker_ctx) -> PaymentGateway:
        assert self.gateway is not None
        return self.gateway
