"""Billing's nameko dependencies: the card gateway."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from billing.payment_gateway import PaymentGateway, SimulatedCardGateway, TimedGateway

CARD_GATEWAY = "CARD_GATEWAY"
CARD_GATEWAY_TIMEOUT_SECONDS = "CARD_GATEWAY_TIMEOUT_SECONDS"
SIMULATED = "simulated"
DEFAULT_GATEWAY_TIMEOUT_SECONDS = 10.0


class CardGateway(DependencyProvider):
    """Injects the card gateway, every call bounded by ``CARD_GATEWAY_TIMEOUT_SECONDS``.

    ``CARD_GATEWAY: simulated`` (the only driver today) is the embedded processor; it
    keeps its records through the engine of the service's ``Database`` dependency.
    """

    def __init__(self, database_attr: str = "db") -> None:
        self.database_attr = database_attr
        self.gateway: PaymentGateway | None = None

    def setup(self):
        config = self.container.config
        driver = config.get(CARD_GATEWAY, SIMULATED) or SIMULATED
        if driver != SIMULATED:
            raise ValueError(f"unknown {CARD_GATEWAY} {driver!r}; known: {SIMULATED}")
        self.timeout = float(
            config.get(CARD_GATEWAY_TIMEOUT_SECONDS, DEFAULT_GATEWAY_TIMEOUT_SECONDS)
        )

    def get_dependency(self, worker_ctx):
        if self.gateway is None:
            database = next(
                dependency
                for dependency in self.container.dependencies
                if dependency.attr_name == self.database_attr
            )
            simulated = SimulatedCardGateway(database.engine, hang_seconds=self.timeout * 3 + 1)
            self.gateway = TimedGateway(simulated, self.timeout)
        return self.gateway
