"""The card gateway billing charges cards through, and its embedded simulation.

``PaymentGateway`` is the whole interface: ``charge`` a card once per idempotency key
(a repeat with the same key answers the first charge's result and charges nothing),
and ``lookup`` a key to learn what became of a charge whose answer was lost. A real
processor (Stripe, Adyen, ...) plugs in behind the same two methods.

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
==================  ===========================================================

It records every charge in ``card_gateway_charges`` in its own transaction, as a real
processor would keep it on its side, so a lookup after a crash finds it.
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

from billing.domain import CARD_DECLINED, INSUFFICIENT_FUNDS, Card, Money
from billing.models import metadata

CHARGE_SUCCEEDED, CHARGE_DECLINED = "succeeded", "declined"

DECLINING_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
TIMEOUT_CARD = "4000000000000119"
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


class PaymentGateway(abc.ABC):
    @abc.abstractmethod
    def charge(self, idempotency_key: str, card: Card, amount: Money) -> ChargeResult:
        """Charge ``card`` once for ``idempotency_key``: a declined charge answers a
        result with ``status="declined"``; no answer raises ``GatewayError``."""

    @abc.abstractmethod
    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The charge made for ``idempotency_key``, or None if there is none."""


class SimulatedCardGateway(PaymentGateway):
    """The embedded processor. It keeps its records in billing's database but in its
    own connections: call it with no transaction of yours open (SQLite has one
    connection per process)."""

    def __init__(self, engine: Engine, *, hang_seconds: float = 60.0) -> None:
        self.engine = engine
        self.hang_seconds = hang_seconds
        self.table = metadata.tables["card_gateway_charges"]

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
