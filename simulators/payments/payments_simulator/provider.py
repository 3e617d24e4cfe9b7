"""What the simulated provider does: tokenize a card, keep a card for a customer,
charge a token or a kept card once per idempotency key, refund a charge once per key.
Each function answers ``(status, body)`` or raises ``ApiError``; the HTTP layer is
``app``."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from . import cards
from .store import Store, new_id, now

SUCCEEDED, DECLINED, FAILED = "succeeded", "declined", "failed"
CHARGE_NOT_REFUNDABLE = "charge_not_refundable"
REFUND_DECLINED = "refund_declined"


class ApiError(Exception):
    """An answer other than success: ``{"error": {type, code, message, param}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.fields = fields

    def body(self) -> dict[str, Any]:
        kind = "card_error" if self.code == "invalid_card" else "invalid_request_error"
        error: dict[str, Any] = {"type": kind, "code": self.code, "message": self.message}
        if self.param:
            error["param"] = self.param
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


@dataclass(frozen=True)
class Behaviour:
    """How long answers wait (the test cards' ``hang`` and ``slow``)."""

    hang_seconds: float = 60.0
    slow_seconds: float = 6.0


# -- tokens and saved cards -----------------------------------------------------------


def _card_view(row: dict[str, Any], kind: str) -> dict[str, Any]:
    exp = f"{row['exp_month']:02d}/{row['exp_year'] % 100:02d}"
    return {
        ("token" if kind == "token" else "id"): row["id"],
        "object": kind,
        "brand": row["brand"],
        "last4": row["number"][-4:],
        "exp_month": row["exp_month"],
        "exp_year": row["exp_year"],
        "expiry": exp,
    }


def create_token(store: Store, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``{number, expiry: "MM/YY", cvc}`` -> ``{token, brand, last4, expiry, ...}``.
    The CVC is checked and forgotten."""
    unknown = sorted(set(body) - {"number", "expiry", "cvc"})
    if unknown:
        raise ApiError(400, "parameter_unknown", f"unknown field {unknown[0]}", unknown[0])
    try:
        card = cards.check(
            body.get("number"), body.get("expiry"), body.get("cvc"), dt.datetime.now(dt.UTC)
        )
    except cards.CardError as error:
        first = sorted(error.errors)[0]
        raise ApiError(
            400, "invalid_card", f"{first} {error.errors[first]}", first, error.errors
        ) from None
    row = {
        "id": new_id("tok"),
        "number": card.number,
        "brand": card.brand,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "created_at": now(),
    }
    with store.transaction() as connection:
        connection.execute(
            "INSERT INTO tokens (id, number, brand, exp_month, exp_year, created_at) "
            "VALUES (:id, :number, :brand, :exp_month, :exp_year, :created_at)",
            row,
        )
    return 201, _card_view(row, "token")


def get_token(store: Store, token: str) -> tuple[int, dict[str, Any]]:
    row = store.one("SELECT * FROM tokens WHERE id = ?", token)
    if row is None:
        raise ApiError(404, "resource_missing", f"no token {token}", "token")
    return 200, _card_view(row, "token")


def save_card(store: Store, body: dict[str, Any], key: str | None) -> tuple[int, dict[str, Any]]:
    """``{token}`` -> a card the provider keeps (``card_…``), charged by its id later.
    With an ``Idempotency-Key``, a repeat answers the first card."""
    if key:
        found = store.one("SELECT * FROM cards WHERE idempotency_key = ?", key)
        if found is not None:
            return 200, _card_view(found, "card")
    token = body.get("token")
    row_token = store.one("SELECT * FROM tokens WHERE id = ?", token) if token else None
    if row_token is None:
        raise ApiError(400, "resource_missing", f"no token {token}", "token")
    row = {
        "id": new_id("card"),
        "idempotency_key": key or None,
        "token": row_token["id"],
        "number": row_token["number"],
        "brand": row_token["brand"],
        "exp_month": row_token["exp_month"],
        "exp_year": row_token["exp_year"],
        "created_at": now(),
    }
    try:
        with store.transaction() as connection:
            connection.execute(
                "INSERT INTO cards (id, idempotency_key, token, number, brand, exp_month, "
                "exp_year, created_at) VALUES (:id, :idempotency_key, :token, :number, :brand, "
                ":exp_month, :exp_year, :created_at)",
                row,
            )
    except sqlite3.IntegrityError:
        row = store.one("SELECT * FROM cards WHERE idempotency_key = ?", key) or row
    return 201, _card_view(row, "card")


def get_card(store: Store, card_id: str) -> tuple[int, dict[str, Any]]:
    row = store.one("SELECT * FROM cards WHERE id = ? AND deleted = 0", card_id)
    if row is None:
        raise ApiError(404, "resource_missing", f"no card {card_id}", "card")
    return 200, _card_view(row, "card")


def delete_card(store: Store, card_id: str) -> tuple[int, dict[str, Any]]:
    with store.transaction() as connection:
        updated = connection.execute(
            "UPDATE cards SET deleted = 1 WHERE id = ? AND deleted = 0", (card_id,)
        ).rowcount
    if not updated:
        raise ApiError(404, "resource_missing", f"no card {card_id}", "card")
    return 200, {"id": card_id, "object": "card", "deleted": True}


def _source(store: Store, source: object) -> dict[str, Any]:
    """The card a charge is made on: a token (``tok_…``) or a kept card (``card_…``)."""
    if isinstance(source, str) and source.startswith("tok_"):
        row = store.one("SELECT * FROM tokens WHERE id = ?", source)
    elif isinstance(source, str) and source.startswith("card_"):
        row = store.one("SELECT * FROM cards WHERE id = ? AND deleted = 0", source)
    else:
        row = None
    if row is None:
        raise ApiError(400, "resource_missing", f"no token or card {source}", "source")
    return row


# -- charges --------------------------------------------------------------------------


def _charge_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "charge",
        "idempotency_key": row["idempotency_key"],
        "source": row["source"],
        "amount": row["amount"],
        "currency": row["currency"],
        "status": row["status"],
        "decline_code": row["decline_code"],
        "card": {"brand": row["brand"], "last4": row["number"][-4:]},
        "created": row["created_at"],
    }


def _money(body: dict[str, Any]) -> tuple[int, str]:
    amount, currency = body.get("amount"), body.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ApiError(400, "parameter_invalid", "amount must be a positive integer", "amount")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise ApiError(400, "parameter_invalid", "currency must be 3 letters", "currency")
    return amount, currency.upper()


def _require_key(key: str | None) -> str:
    if not key:
        raise ApiError(
            400, "parameter_missing", "an Idempotency-Key header is required", "Idempotency-Key"
        )
    return key


def charge(
    store: Store, behaviour: Behaviour, body: dict[str, Any], key: str | None
) -> tuple[int, dict[str, Any], float]:
    """``{source, amount, currency}`` charged once per ``Idempotency-Key``: a repeat
    answers the first charge (declined or not) at once. Answers the status, the
    charge and how long to wait before answering (the test cards' delays)."""
    key = _require_key(key)
    found = store.one("SELECT * FROM charges WHERE idempotency_key = ?", key)
    if found is not None:
        return 200, _charge_view(found), 0.0
    amount, currency = _money(body)
    card = _source(store, body.get("source"))
    decline_code = cards.DECLINE_CODES.get(card["number"])
    row = {
        "id": new_id("ch"),
        "idempotency_key": key,
        "source": body["source"],
        "number": card["number"],
        "brand": card["brand"],
        "amount": amount,
        "currency": currency,
        "status": DECLINED if decline_code else SUCCEEDED,
        "decline_code": decline_code,
        "created_at": now(),
    }
    try:
        with store.transaction() as connection:
            connection.execute(
                "INSERT INTO charges (id, idempotency_key, source, number, brand, amount, "
                "currency, status, decline_code, created_at) VALUES (:id, :idempotency_key, "
                ":source, :number, :brand, :amount, :currency, :status, :decline_code, "
                ":created_at)",
                row,
            )
    except sqlite3.IntegrityError:  # the same key at the same moment: that charge answers
        first = store.one("SELECT * FROM charges WHERE idempotency_key = ?", key)
        assert first is not None
        return 200, _charge_view(first), 0.0
    wait = {cards.HANGING: behaviour.hang_seconds, cards.SLOW: behaviour.slow_seconds}.get(
        card["number"], 0.0
    )
    return 201, _charge_view(row), wait


def find_charges(store: Store, key: str | None) -> tuple[int, dict[str, Any]]:
    """``GET /v1/charges?idempotency_key=K``: the charge made for ``K`` (none, or one)."""
    if not key:
        raise ApiError(400, "parameter_missing", "idempotency_key is required", "idempotency_key")
    rows = store.all("SELECT * FROM charges WHERE idempotency_key = ?", key)
    return 200, {"object": "list", "data": [_charge_view(row) for row in rows]}


def get_charge(store: Store, charge_id: str) -> tuple[int, dict[str, Any]]:
    row = store.one("SELECT * FROM charges WHERE id = ?", charge_id)
    if row is None:
        raise ApiError(404, "resource_missing", f"no charge {charge_id}", "charge")
    return 200, _charge_view(row)


# -- refunds --------------------------------------------------------------------------


def _refund_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "refund",
        "idempotency_key": row["idempotency_key"],
        "charge": row["charge"],
        "amount": row["amount"],
        "currency": row["currency"],
        "status": row["status"],
        "failure_code": row["failure_code"],
        "created": row["created_at"],
    }


def refund(
    store: Store, behaviour: Behaviour, body: dict[str, Any], key: str | None
) -> tuple[int, dict[str, Any], float]:
    """``{charge, amount, currency}`` refunded once per ``Idempotency-Key``: a repeat
    answers the first refund at once. A refund of more than is left of the charge, of
    a declined or unknown charge, or in another currency fails
    (``charge_not_refundable``); the refund-declining test card's fail
    (``refund_declined``); both are recorded and answered, not raised."""
    key = _require_key(key)
    found = store.one("SELECT * FROM refunds WHERE idempotency_key = ?", key)
    if found is not None:
        return 200, _refund_view(found), 0.0
    amount, currency = _money(body)
    charge_id = body.get("charge")
    if not isinstance(charge_id, str) or not charge_id:
        raise ApiError(400, "parameter_missing", "charge is required", "charge")
    wait = 0.0
    try:
        with store.transaction() as connection:
            charged = connection.execute(
                "SELECT * FROM charges WHERE id = ?", (charge_id,)
            ).fetchone()
            already = connection.execute(
                "SELECT coalesce(sum(amount), 0) FROM refunds WHERE charge = ? AND status = ?",
                (charge_id, SUCCEEDED),
            ).fetchone()[0]
            failure_code = None
            if (
                charged is None
                or charged["status"] != SUCCEEDED
                or charged["currency"] != currency
                or already + amount > charged["amount"]
            ):
                failure_code = CHARGE_NOT_REFUNDABLE
            elif charged["number"] == cards.REFUND_DECLINING:
                failure_code = REFUND_DECLINED
            if charged is not None and charged["number"] == cards.REFUND_HANGING:
                wait = behaviour.hang_seconds
            row = {
                "id": new_id("re"),
                "idempotency_key": key,
                "charge": charge_id,
                "amount": amount,
                "currency": currency,
                "status": FAILED if failure_code else SUCCEEDED,
                "failure_code": failure_code,
                "created_at": now(),
            }
            connection.execute(
                "INSERT INTO refunds (id, idempotency_key, charge, amount, currency, status, "
                "failure_code, created_at) VALUES (:id, :idempotency_key, :charge, :amount, "
                ":currency, :status, :failure_code, :created_at)",
                row,
            )
    except sqlite3.IntegrityError:
        first = store.one("SELECT * FROM refunds WHERE idempotency_key = ?", key)
        assert first is not None
        return 200, _refund_view(first), 0.0
    return 201, _refund_view(row), wait


def find_refunds(store: Store, key: str | None) -> tuple[int, dict[str, Any]]:
    if not key:
        raise ApiError(400, "parameter_missing", "idempotency_key is required", "idempotency_key")
    rows = store.all("SELECT * FROM refunds WHERE idempotency_key = ?", key)
    return 200, {"object": "list", "data": [_refund_view(row) for row in rows]}


# -- what the simulator holds, for tests ------------------------------------------------


def everything(store: Store) -> dict[str, Any]:
    """Every charge and refund made (``GET /sim/ledger``): what a test counts."""
    return {
        "charges": [_charge_view(r) for r in store.all("SELECT * FROM charges ORDER BY rowid")],
        "refunds": [_refund_view(r) for r in store.all("SELECT * FROM refunds ORDER BY rowid")],
    }
