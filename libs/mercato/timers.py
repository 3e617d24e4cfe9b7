"""A nameko timer whose interval comes from the service's config."""

from __future__ import annotations

from nameko.timer import Timer


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
