"""A unit of work for command-line tools that act as a service outside nameko.

``mercato-create-operator`` writes to iam-agency's database and emits an event the
same way an entrypoint does: the event lands in the outbox and the service's relay
publishes it on its next sweep.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from mercato.db import UnitOfWork, create_engine
from mercato.identity import new_correlation_id
from mercato.outbox import OutboxRelay


class CommandContext:
    """What a unit of work reads from a nameko worker context, for a command."""

    def __init__(self, service_name: str, command: str) -> None:
        self.data = {"correlation_id": new_correlation_id()}
        self.args = ()
        self.call_id = f"{service_name}.{command}.{self.data['correlation_id']}"


@contextlib.contextmanager
def standalone_unit_of_work(
    database_url: str,
    metadata: sa.MetaData,
    *,
    service_name: str,
    command: str,
    repositories: Mapping[str, Callable[[Session], Any]] | None = None,
) -> Iterator[UnitOfWork]:
    engine = create_engine(database_url)
    database = SimpleNamespace(
        metadata=metadata,
        repositories=dict(repositories or {}),
        sessionmaker=sessionmaker(bind=engine, expire_on_commit=False),
        # only its add() is used here: the running service publishes the row
        outbox=OutboxRelay(
            engine=engine,
            metadata=metadata,
            service_name=service_name,
            amqp_uri="memory://",
            container_config={},
        ),
    )
    unit = UnitOfWork(database, CommandContext(service_name, command))  # type: ignore[arg-type]
    try:
        yield unit
    finally:
        unit.close()
        engine.dispose()
