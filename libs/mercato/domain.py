"""What every service's ``domain.py`` builds on: state machines and recorded events.

An entity's statuses and the moves between them are declared once, as a
``StateMachine``; a move that its present status does not allow is refused with
``Conflict`` (409), naming the move and the status::

    ORDER = StateMachine("order", {
        "pay": ((UNPAID,), PAID),
        "cancel": ((UNPAID,), CANCELLED),
    })
    ORDER.move("pay", "cancelled")  # Conflict: the order is cancelled; pay needs it unpaid

An entity records the events its moves cause (``RecordsEvents.record``); the use case
hands them to its unit of work (``uow.emit_recorded(entity)``), which writes them to the
outbox in the same transaction as the change. No nameko and no SQL here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mercato.errors import Conflict


@dataclass(frozen=True)
class DomainEvent:
    """A fact an entity's move caused, to be announced as event ``type``."""

    type: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    account_id: str | None = None


class RecordsEvents:
    """Mixed into an entity (a plain class or a mapped model) that records events.

    The list is made on first use: SQLAlchemy builds loaded objects without calling
    ``__init__``.
    """

    def record(
        self, event_type: str, *, subject: str, data: dict[str, Any], account_id: str | None
    ) -> None:
        self.__dict__.setdefault("_recorded_events", []).append(
            DomainEvent(event_type, subject, data, account_id)
        )

    def take_events(self) -> list[DomainEvent]:
        """The events recorded since the last call, oldest first."""
        return self.__dict__.pop("_recorded_events", [])


class StateMachine:
    """The moves an entity's status may make: ``{move: (from statuses, to status)}``."""

    def __init__(self, entity: str, moves: Mapping[str, tuple[Iterable[str], str]]) -> None:
        self.entity = entity
        self._moves = {name: (tuple(sources), target) for name, (sources, target) in moves.items()}

    def allows(self, move: str, status: str) -> bool:
        return status in self._moves[move][0]

    def move(self, move: str, status: str) -> str:
        """The status ``move`` leads to from ``status``; Conflict if it may not."""
        sources, target = self._moves[move]
        if status not in sources:
            needed = " or ".join(sources)
            raise Conflict(f"the {self.entity} is {status}; {move} needs it {needed}")
        return target

    def moves(self) -> dict[str, tuple[tuple[str, ...], str]]:
        """Every move, for documentation and tests."""
        return dict(self._moves)
