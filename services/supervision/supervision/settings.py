"""supervision's settings, read once from the service's config (config.yaml, where each
can be set from the environment)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import holidays

from supervision.domain import WorkingDays

AUTO_ACCEPT_DAYS = "SUPERVISION_AUTO_ACCEPT_DAYS"
CONFIRM_DAYS = "SUPERVISION_CONFIRM_DAYS"
HOLIDAYS_COUNTRY = "SUPERVISION_HOLIDAYS_COUNTRY"


@dataclass(frozen=True)
class Settings:
    # a provided service not accepted or appealed by the buyer is accepted after these days
    auto_accept_days: int = 7
    # working days a seller has to confirm a request before it is reminded
    confirm_days: int = 3
    # whose public holidays are not working days (an ISO 3166 code the holidays package knows)
    holidays_country: str = "CN"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        defaults = cls()
        settings = cls(
            auto_accept_days=int(config.get(AUTO_ACCEPT_DAYS) or defaults.auto_accept_days),
            confirm_days=int(config.get(CONFIRM_DAYS) or defaults.confirm_days),
            holidays_country=str(config.get(HOLIDAYS_COUNTRY) or defaults.holidays_country),
        )
        if settings.auto_accept_days < 3:
            # the buyer is told two days ahead; fewer days would tell it too late
            raise ValueError(f"{AUTO_ACCEPT_DAYS} must be at least 3")
        if settings.confirm_days < 1:
            raise ValueError(f"{CONFIRM_DAYS} must be at least 1")
        settings.working_days()  # an unknown country fails at start, not at the first appeal
        return settings

    def working_days(self) -> WorkingDays:
        calendar = holidays.country_holidays(self.holidays_country)

        def is_holiday(day: dt.date) -> bool:
            return day in calendar

        return WorkingDays(is_holiday)
