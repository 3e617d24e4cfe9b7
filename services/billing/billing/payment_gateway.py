"""The card payment provider billing charges cards through, and its HTTP driver.

Card numbers never reach Mercato: a client exchanges a card for a token at the provider
and gives Mercato the token (or the id of a card the account keeps, whose provider
reference billing holds). ``PaymentGateway`` is all billing asks of a provider:

- ``card``: the card behind a token (brand, last four digits, expiry), or None;
- ``keep``: have the provider keep a token's card for the account (a bound card);
  ``forget`` it again;
- ``charge`` a card once per idempotency key (a repeat with the same key answers the
  first charge's result and charges nothing); ``lookup`` a key to learn what became of
  a charge whose answer was lost;
- ``refund`` (part of) a charge, again once per idempotency key, so a refund whose
  answer was lost is simply asked for again.

``HttpCardGateway`` speaks the Stripe-like API of ``simulators/payments`` (the simulated
provider ``make run`` starts; its README lists the test cards). Every call is bounded by
``timeout`` seconds, well under what orders waits for billing: a provider that does not
answer in time raises ``GatewayTimeout`` and the charge is left pending, settled later
by a lookup of its key.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from typing import Any

import eventlet
import requests

from billing.domain import Card
from mercato.money import Money

CHARGE_SUCCEEDED, CHARGE_DECLINED = "succeeded", "declined"
REFUND_SUCCEEDED, REFUND_FAILED = "succeeded", "failed"

_log = logging.getLogger(__name__)


class GatewayError(Exception):
    """The provider did not say what became of the call; a charge may or may not exist."""


class GatewayTimeout(GatewayError):
    pass


class UnknownCard(Exception):
    """The provider knows no such token or card: nothing was done."""


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
    def card(self, token: str) -> Card | None:
        """The card behind ``token`` (to charge it: ``source`` is the token), or None
        when the provider knows no such token."""

    @abc.abstractmethod
    def keep(self, token: str, idempotency_key: str) -> Card:
        """Have the provider keep ``token``'s card: ``source`` is the provider's id of
        the kept card. Once per key. ``UnknownCard`` when the token is unknown."""

    @abc.abstractmethod
    def forget(self, source: str) -> None:
        """Have the provider delete a kept card (one it does not know is forgotten)."""

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


class HttpCardGateway(PaymentGateway):
    """The provider's HTTP API at ``url`` (``simulators/payments/README.md``), every
    call answered within ``timeout`` seconds or ``GatewayTimeout``."""

    def __init__(self, url: str, timeout: float, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def card(self, token: str) -> Card | None:
        status, body = self._call("GET", f"/v1/tokens/{token}", what="token lookup")
        if status == 404:
            return None
        return _card(token, body)

    def keep(self, token: str, idempotency_key: str) -> Card:
        status, body = self._call(
            "POST", "/v1/cards", {"token": token}, key=idempotency_key, what="keep card"
        )
        if status == 400:
            raise UnknownCard(f"the provider knows no token {token[:8]}…")
        return _card(body["id"], body)

    def forget(self, source: str) -> None:
        self._call("DELETE", f"/v1/cards/{source}", what="forget card")  # 404: forgotten

    def charge(self, idempotency_key: str, card: Card, amount: Money) -> ChargeResult:
        status, body = self._call(
            "POST",
            "/v1/charges",
            {"source": card.source, "amount": amount.amount, "currency": amount.currency},
            key=idempotency_key,
            what="charge",
        )
        if status >= 400:
            # the provider took no charge (a card deleted meanwhile): the lookup finds
            # none and the attempt fails, nothing charged
            raise GatewayError(f"the provider refused the charge: {_reason(body)}")
        return _charge(body)

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        _, body = self._call(
            "GET", "/v1/charges", params={"idempotency_key": idempotency_key}, what="lookup"
        )
        found = body.get("data") or []
        return _charge(found[0]) if found else None

    def refund(self, charge_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        status, body = self._call(
            "POST",
            "/v1/refunds",
            {"charge": charge_reference, "amount": amount.amount, "currency": amount.currency},
            key=idempotency_key,
            what="refund",
        )
        if status >= 400:
            raise GatewayError(f"the provider refused the refund call: {_reason(body)}")
        return RefundResult(
            idempotency_key=body["idempotency_key"],
            refund_id=body["id"],
            charge_id=body["charge"],
            status=body["status"],
            amount=Money(body["amount"], body["currency"]),
            failure_code=body.get("failure_code"),
        )

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        params: dict[str, str] | None = None,
        what: str,
    ) -> tuple[int, dict[str, Any]]:
        """One call, answered within ``timeout`` (the whole of it, not each read):
        ``(status, body)`` for a 2xx or 4xx; ``GatewayError`` for anything else."""
        headers = {"Idempotency-Key": key} if key else {}
        timer = eventlet.Timeout(self.timeout)
        try:
            response = self.session.request(
                method,
                f"{self.url}{path}",
                json=body,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            raise GatewayTimeout(
                f"the card provider did not answer {what} within {self.timeout:g}s"
            ) from None
        except requests.Timeout:
            raise GatewayTimeout(
                f"the card provider did not answer {what} within {self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise GatewayError(f"the card provider could not be asked ({what}): {exc}") from None
        finally:
            timer.cancel()
        if response.status_code >= 500:
            raise GatewayError(f"the card provider failed ({what}): {response.status_code}")
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            raise GatewayError(f"the card provider answered no JSON ({what})") from None
        if response.status_code >= 400 and response.status_code != 404:
            _log.info("card provider refused %s: %s", what, _reason(answer))
        return response.status_code, answer


def _card(source: str, body: dict[str, Any]) -> Card:
    return Card(source=source, brand=body["brand"], last4=body["last4"], expiry=body["expiry"])


def _charge(body: dict[str, Any]) -> ChargeResult:
    return ChargeResult(
        idempotency_key=body["idempotency_key"],
        charge_id=body["id"],
        status=body["status"],
        amount=Money(body["amount"], body["currency"]),
        decline_code=body.get("decline_code"),
    )


def _reason(body: dict[str, Any]) -> str:
    error = body.get("error") or {}
    return f"{error.get('code')}: {error.get('message')}"
