"""A service keeps the key of each request that changed something, with what it did.

The gateway hands every RPC of a POST that carried an ``Idempotency-Key`` the key's
SHA-256 (``mercato.identity.REQUEST_KEY``, ``CallerContext.request_key``). After a
failure that may have done the work (a 503 whose answer was lost, a gateway killed
mid-request) the gateway keeps its record and runs the retry again with the same key.
So a use case that creates or changes something keeps the key in the same transaction
as its work, and a retry finds it and answers the first result (the product it
created, the flow it moved) instead of doing the work twice or refusing it ("only a
draft can be published").

One row per (account, key, operation): the id of what the operation made or changed,
and a fingerprint of its arguments. The same key with other arguments is the client
reusing a key for another request: 422 ``IDEMPOTENCY_KEY_REUSED``, as at the gateway.
Rows are kept, like the things they name: a retry long after the gateway forgot the
key (past its TTL) still finds the first result.

A use case::

    kept = RequestKey.of(request_key, account_id=seller, operation="publish_product",
                         arguments={"product_id": product_id})
    first = uow.request_keys.first_result(kept)
    if first is not None:
        return view(uow.catalog.product(first))
    ...the work...
    uow.request_keys.keep(kept, product.id, clock.now())
    uow.commit()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mercato.errors import BusinessRuleViolation, Conflict
from mercato.tables import UTCDateTime

TABLE = "request_keys"

request_keys = sa.Table(
    TABLE,
    sa.MetaData(),
    sa.Column("account_id", sa.String(64), primary_key=True),
    # the SHA-256 (hex) of the client's Idempotency-Key, as the gateway passes it
    sa.Column("request_key", sa.String(64), primary_key=True),
    sa.Column("operation", sa.String(64), primary_key=True),
    # SHA-256 of the operation's arguments: the same key with others is refused
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # the id of what the operation made or changed (a product, a flow, an appeal)
    sa.Column("result_id", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)


def add_request_keys_table(metadata: sa.MetaData) -> None:
    """Declare ``request_keys`` in a service's metadata (its migration creates it)."""
    request_keys.to_metadata(metadata)


def _reused() -> BusinessRuleViolation:
    return BusinessRuleViolation(
        "this Idempotency-Key was used with another request; use a new key",
        code="IDEMPOTENCY_KEY_REUSED",
    )


def _fingerprint(operation: str, arguments: Any) -> str:
    canonical = json.dumps(
        [operation, arguments], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class RequestKey:
    """One request's key as one operation of one account keeps it."""

    account_id: str
    key: str
    operation: str
    fingerprint: str

    @classmethod
    def of(
        cls, key: str | None, *, account_id: str, operation: str, arguments: Any = None
    ) -> RequestKey | None:
        """None without a key (the request carried no Idempotency-Key): nothing kept."""
        if not key:
            return None
        return cls(account_id, key, operation, _fingerprint(operation, arguments))


class RequestKeys:
    """A unit of work's access to ``request_keys`` (``uow.request_keys``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def first_result(self, kept: RequestKey | None) -> str | None:
        """The id the key's first request answered with; None the first time.
        422 IDEMPOTENCY_KEY_REUSED when the key was first used with other arguments."""
        if kept is None:
            return None
        row = self._session.execute(
            sa.select(request_keys.c.fingerprint, request_keys.c.result_id).where(
                request_keys.c.account_id == kept.account_id,
                request_keys.c.request_key == kept.key,
                request_keys.c.operation == kept.operation,
            )
        ).first()
        if row is None:
            return None
        if row.fingerprint != kept.fingerprint:
            raise _reused()
        return str(row.result_id)

    def keep(self, kept: RequestKey | None, result_id: str, now: dt.datetime) -> None:
        """Keep the key with ``result_id``, in the unit of work's transaction. Two
        requests with one key racing past ``first_result``: the second is refused
        here (Conflict) and its transaction rolls back, doing nothing."""
        if kept is None:
            return
        try:
            self._session.execute(
                sa.insert(request_keys).values(
                    account_id=kept.account_id,
                    request_key=kept.key,
                    operation=kept.operation,
                    fingerprint=kept.fingerprint,
                    result_id=result_id,
                    created_at=now,
                )
            )
        except IntegrityError:
            raise Conflict(
                "another request with this Idempotency-Key is being handled; retry shortly"
            ) from None
