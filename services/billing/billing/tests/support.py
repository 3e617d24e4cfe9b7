"""What billing's use-case tests share, in memory (``test_usecases.py``) and on
PostgreSQL (``test_refunds.py``): the buyer, cards, and the use cases called as the
service calls them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from billing import domain, usecases
from billing.tests.fakes import FakeCardProcessor, who
from mercato.clock import ManualClock
from mercato.identity import Identity

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(seconds=60)
BUYER, RESELLER = "acc_buyer", "acc_reseller"
# tokens of the in-memory processor (``fakes.FakeCardProcessor``)
GOOD_CARD = {"token": "tok_4242424242424242"}
DECLINING_CARD = {"token": "tok_4000000000000002"}
REASON = "Delivery failed: the SaaS tenant could not be created."


def usd(amount: int, currency: str = "USD") -> dict:
    return {"amount": amount, "currency": currency}


OPERATOR = who("acc_ops", "operator")


class Books:
    """billing's use cases called the way its entrypoints and handlers call them, for
    the buyer ``BUYER``, on ``uow`` (in memory, or on PostgreSQL), a clock the test
    moves and an in-memory card processor that declines ``DECLINING_CARD``."""

    def __init__(self, uow: Any) -> None:
        self.uow = uow
        self.clock = ManualClock(START)
        self.gateway = FakeCardProcessor(declining={DECLINING_CARD["token"]: "card_declined"})

    def pay(
        self,
        order_id: str,
        amount: int,
        method: str = domain.BALANCE,
        *,
        payer: str = BUYER,
        card: dict | None = None,
        caller: Identity | None = None,
        currency: str = "USD",
    ) -> dict:
        if caller is None:
            caller = who(BUYER, "buyer", reseller=RESELLER if payer == RESELLER else None)
        if card is None and method == domain.CREDIT_CARD:
            card = GOOD_CARD
        return usecases.pay_order(
            self.uow,
            self.clock,
            self.gateway,
            caller=caller,
            order_id=order_id,
            account_id=BUYER,
            payer_account_id=payer,
            amount=usd(amount, currency),
            enterprise_project_id="default",
            payment_method=method,
            card=card,
        )

    def top_up(
        self, amount: int, card: dict = GOOD_CARD, key: str | None = None, currency: str = "USD"
    ) -> dict:
        return usecases.top_up(
            self.uow,
            self.clock,
            self.gateway,
            account_id=BUYER,
            amount=usd(amount, currency),
            card=card,
            idempotency_key=key,
        )

    def grant_credit(self, amount: int, currency: str = "USD", account_id: str = BUYER) -> dict:
        return usecases.set_credit_limit(
            self.uow,
            self.clock,
            operator=OPERATOR,
            account_id=account_id,
            amount=usd(amount, currency),
        )

    def refund_without_commit(self, payment: dict, **changes: Any) -> dict:
        request = {
            "payment_id": payment["id"],
            "order_id": payment["order_id"],
            "account_id": payment["account_id"],
            "amount": payment["amount"],
            "reason": REASON,
            **changes,
        }
        return usecases.refund_payment(self.uow, self.clock, self.gateway, **request)

    def refund(self, payment: dict, **changes: Any) -> dict:
        """As the cancellation's event handler refunds: its inbox wrapper commits."""
        view = self.refund_without_commit(payment, **changes)
        self.uow.commit()
        return view

    def recover(self) -> int:
        return usecases.recover_pending_charges(self.uow, self.clock, self.gateway, grace=GRACE)

    def figures(self, account_id: str = BUYER) -> dict[str, int]:
        view = usecases.get_balance(self.uow, account_id=account_id)
        return {key: value["amount"] for key, value in view.items() if isinstance(value, dict)}

    def payment(self, order_id: str) -> dict:
        return usecases.get_payment(self.uow, caller=OPERATOR, order_id=order_id)

    def refund_of(self, order_id: str, caller: Identity = OPERATOR) -> dict:
        return usecases.get_refund(self.uow, caller=caller, order_id=order_id)

    def statement(self, account_id: str = BUYER) -> list[tuple[str, int, int]]:
        page = usecases.list_transactions(self.uow, account_id=account_id, page=1, page_size=20)
        return [
            (item["kind"], item["amount"]["amount"], item["balance_after"]["amount"])
            for item in page["items"]
        ]
