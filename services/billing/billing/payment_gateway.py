"""The card gateway billing charges cards through, and its embedded simulation.

``PaymentGateway`` is the whole interface: ``charge`` a card once per idempotency key
(a repeat with the same key answers the first charge's result and charges nothing),
``lookup`` a key to learn what became of a charge whose answer was lost, and
``refund`` (part of) a charge, again once per idempotency key, so a refund whose answer
was lost is simply asked for again. A real processor (Stripe, Adyen, ...) plugs in
behind the same three methods.

``SimulatedCardGateway`` is the default. Its test cards, any expiry in the future and
any CVC of the right length:

==================  ===========================================================
card number         what the simulated processor does
==================  ===========================================================
4242424242424242    succeeds (as does any other Luhn-valid number)
5555555555554444    succeeds (Mastercard)
4000000000000002    declines: ``card_declined``
4000000000009995    declines: ``insufficient_funds``
4000000000000119    the charge succeeds at the processor but its answer does not
                    arrive within the gateway timeout (``GatewayTimeout``); a
                    ``lookup`` finds it
4000000000000077    the charge succeeds; a refund of it succeeds at the processor
                    but its answer does not arrive in time (``GatewayTimeout``);
                    asking again with the same key answers it
4000000000005126    the charge succeeds; a refund of it is refused
                    (``refund_declined``, as when the card account was closed)
==================  ===========================================================

A refund of any other card's charge succeeds, up to what is left of the charge (more
is refused: ``charge_not_refundable``, as is a refund of a declined or unknown charge).
The processor keeps only a card's brand and last four digits, so it recognises the
refund test cards by their last four digits.

It records every charge in ``card_gateway_charges`` and every refund in
``card_gateway_refunds``, each in its own transaction, as a real processor would keep
them on its side, so a lookup or a repeated refund after a crash finds them.
"""

from __future__ import annotations

import abc
import datetime as dt
import uuid
from dataclasses import dataclass

import eventlet
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from billing.domain import (
    CARD_DECLINED,
    CHARGE_NOT_REFUNDABLE,
    INSUFFICIENT_FUNDS,
    REFUND_DECLINED,
    Card,
)
from billing.models import metadata
from mercato.money import Money

CHARGE_SUCCEEDED, CHARGE_DECLINED = "succeeded", "declined"
REFUND_SUCCEEDED, REFUND_FAILED = "succeeded", "failed"

DECLINING_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
TIMEOUT_CARD = "4000000000000119"
REFUND_TIMEOUT_CARD = "4000000000000077"
REFUND_DECLINING_CARD = "4000000000005126"
TEST_DECLINES = {DECLINING_CARD: CARD_DECLINED, INSUFFICIENT_FUNDS_CARD: INSUFFICIENT_FUNDS}


class GatewayError(Exception):
    """The gateway did not say what became of the charge; it may or may not exist."""


class GatewayTimeout(GatewayError):
    pass


@dataclass(frozen=True)
class ChargeResult:
    idempotency_key: str
    charge_id: str
    status: str  # succeeded or declined
    amount: Money
    decline_code: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == CHARGE_SUCCEEDED


@dataclass(frozen=True)
class RefundResult:
    idempotency_key: str
    refund_id: str
    charge_id: str
    status: str  # succeeded or failed
    amount: Money
    failure_code: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == REFUND_SUCCEEDED


class PaymentGateway(abc.ABC):
    @abc.abstractmethod
    def charge(self, idempotency_key: str, card: Card, amount: Money) -> ChargeResult:
        """Charge ``card`` once for ``idempotency_key``: a declined charge answers a
        result with ``status="declined"``; no answer raises ``GatewayError``."""

    @abc.abstractmethod
    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The charge made for ``idempotency_key``, or None if there is none."""

    @abc.abstractmethod
    def refund(self, charge_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        """Pay ``amount`` of the charge ``charge_reference`` (its ``charge_id``) back to
        its card, once for ``idempotency_key``: a repeat answers the first refund's
        result and refunds nothing. A refused refund answers ``status="failed"`` with a
        ``failure_code``; no answer raises ``GatewayError`` (ask again, same key)."""


class SimulatedCardGateway(PaymentGateway):
    """The embedded processor. It keeps its records in billing's database but in its
    own connections: call it with no transaction of yours open (SQLite has one
    connection per process)."""

    def __init__(self, engine: Engine, *, hang_seconds: float = 60.0) -> None:
        self.engine = engine
        self.hang_seconds = hang_seconds
        self.table = metadata.tables["card_gateway_charges"]
        self.refunds_table = metadata.tables["card_gateway_refunds"]

    def charge(self, idempotency_key: str, card: Card, amount: Money) -> ChargeResult:
        found = self.lookup(idempotency_key)
        if found is not None:
            return found
        decline_code = TEST_DECLINES.get(card.number)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.insert(self.table).values(
                        id=f"ch_{uuid.uuid4().hex}",
                        idempotency_key=idempotency_key,
                        amount=amount.amount,
                        currency=amount.currency,
                        card_brand=card.brand,
                        card_last4=card.last4,
                        status=CHARGE_DECLINED if decline_code else CHARGE_SUCCEEDED,
                        decline_code=decline_code,
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
        except IntegrityError:
            pass  # the same key charged at the same moment: that charge is the answer
        result = self.lookup(idempotency_key)
        if result is None:
            raise GatewayError(f"the charge {idempotency_key} was not recorded")
        if card.number == TIMEOUT_CARD:
            eventlet.sleep(self.hang_seconds)  # the answer is lost on the way back
        return result

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(self.table).where(self.table.c.idempotency_key == idempotency_key)
            ).first()
        if row is None:
            return None
        return ChargeResult(
            idempotency_key=row.idempotency_key,
            charge_id=row.id,
            status=row.status,
            amount=Money(row.amount, row.currency),
            decline_code=row.decline_code,
        )

    def refund(self, charge_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        found = self._find_refund(idempotency_key)
        if found is not None:
            return found
        refunds = self.refunds_table
        with self.engine.begin() as connection:
            charge = connection.execute(
                sa.select(self.table).where(self.table.c.id == charge_reference).with_for_update()
            ).first()
            already = 0
            if charge is not None:
                already = connection.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
                        refunds.c.charge_id == charge.id, refunds.c.status == REFUND_SUCCEEDED
                    )
                ).scalar_one()
            failure_code = None
            if (
                charge is None
                or charge.status != CHARGE_SUCCEEDED
                or charge.currency != amount.currency
                or already + amount.amount > charge.amount
            ):
                failure_code = CHARGE_NOT_REFUNDABLE
            elif charge.card_last4 == REFUND_DECLINING_CARD[-4:]:
                failure_code = REFUND_DECLINED
            try:
                with connection.begin_nested():
                    connection.execute(
                        sa.insert(refunds).values(
                            id=f"re_{uuid.uuid4().hex}",
                            idempotency_key=idempotency_key,
                            charge_id=charge_reference,
                            amount=amount.amount,
                            currency=amount.currency,
                            status=REFUND_FAILED if failure_code else REFUND_SUCCEEDED,
                            failure_code=failure_code,
                            created_at=dt.datetime.now(dt.UTC),
                        )
                    )
            except IntegrityError:
                pass  # the same key refunded at the same moment: that refund is the answer
        result = self._find_refund(idempotency_key)
        if result is None:
            raise GatewayError(f"the refund {idempotency_key} was not recorded")
        if charge is not None and charge.card_last4 == REFUND_TIMEOUT_CARD[-4:]:
            eventlet.sleep(self.hang_seconds)  # the answer is lost on the way back
        return result

    def _find_refund(self, idempotency_key: str) -> RefundResult | None:
        refunds = self.refunds_table
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(refunds).where(refunds.c.idempotency_key == idempotency_key)
            ).first()
        if row is None:
            return None
        return RefundResult(
            idempotency_key=row.idempotency_key,
            refund_id=row.id,
            charge_id=row.charge_id,
            status=row.status,
            amount=Money(row.amount, row.currency),
            failure_code=row.failure_code,
        )


class TimedGateway(PaymentGateway):
    """Bounds every call to the gateway: no answer within ``timeout`` seconds raises
    ``GatewayTimeout`` (the charge may still have happened: look it up later)."""

    def __init__(self, gateway: PaymentGateway, timeout: float) -> None:
        self.gateway = gateway
        self.timeout = timeout

    def charge(self, idempotency_key: str, card: Card, amount: Money) -> ChargeResult:
        return self._bounded("charge", self.gateway.charge, idempotency_key, card, amount)

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        return self._bounded("lookup", self.gateway.lookup, idempotency_key)

    def refund(self, charge_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        return self._bounded(
            "refund", self.gateway.refund, charge_reference, amount, idempotency_key
        )

    def _bounded(self, what: str, call, *args):
        timeout = eventlet.Timeout(self.timeout)
        try:
            return call(*args)
        except eventlet.Timeout as exc:
            if exc is not timeout:
                raise
            raise GatewayTimeout(
                f"the card gateway did not answer {what} within {self.timeout:g}s"
            ) from None
        finally:
            timeout.cancel()
