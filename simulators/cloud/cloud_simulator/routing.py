"""What every service module declares: its routes, and the call a handler receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import Headers, MultiDict

from .errors import CloudError, bad_request
from .faults import FaultOutcome
from .store import Store


@dataclass(frozen=True)
class Settings:
    region: str = "cn-north-4"
    step_seconds: float = 0.3  # how long each asynchronous step (a job, a stack resource) takes


@dataclass(frozen=True)
class Caller:
    """Who signed the request: an account's IAM admin user, or an assumed agency."""

    domain_id: str
    domain_name: str
    project_id: str
    access_key: str
    agency_id: str | None = None
    agency_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.agency_id is None


@dataclass
class Call:
    store: Store
    settings: Settings
    caller: Caller
    params: dict[str, str]
    query: MultiDict
    body: Any
    headers: Headers
    request_id: str
    style: str
    outcome: FaultOutcome = field(default_factory=FaultOutcome)

    def field(self, *path: str, required: bool = True, default: Any = None) -> Any:
        """``call.field("server", "name")``: a body field, a 400 in the service's style
        when a required one is missing."""
        value: Any = self.body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            if required:
                raise bad_request(self.style, f"Missing required field: {'.'.join(path)}.")
            return default
        return value


Answer = tuple[int, Any]


@dataclass(frozen=True)
class Route:
    """One SDK call: ``sdk_call`` names it as the SDK does (for the README and logs);
    ``action`` is the IAM action checked before ``handler`` runs (None: the handler
    decides, as CreateTemporaryAccessKeyByAgency's trust check does)."""

    method: str
    path: str
    sdk_call: str
    action: str | None
    style: str
    handler: Callable[[Call], Answer]
    project_scoped: bool = True


def require(condition: bool, error: CloudError) -> None:
    if not condition:
        raise error
