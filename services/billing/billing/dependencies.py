"""Billing's nameko dependencies: the card gateway and a timer whose interval comes
from the config."""

from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

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


class ConfiguredTimer(Timer):
    """``@configured_timer("SWEEP_SECONDS", 5)``: a timer firing every
    ``config[SWEEP_SECONDS]`` seconds (``default`` when unset)."""

    interval: float

    def __init__(self, interval_key: str, default: float, **kwargs) -> None:
        super().__init__(interval=default, **kwargs)
        self.interval_key = interval_key

    def setup(self):
        self.interval = float(self.container.config.get(self.interval_key, self.interval))


configured_timer = ConfiguredTimer.decorator
