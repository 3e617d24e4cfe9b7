"""billing's entrypoints: load and check the input, call one use case, dump.

Money is always ``{"amount": <integer minor units>, "currency": "USD"}``. Every RPC
reads its caller from the context data (``account_id``, ``user_id``, ``roles``,
``reseller_account_id``) that the gateway set and the orders service passes on.
"""

from __future__ import annotations

import datetime as dt

from nameko.dependency_providers import Config

from billing import bills, cards, invoices, schemas, usecases
from billing.bill_repository import BillRepository
from billing.card_repository import CardRepository
from billing.dependencies import (
    CARD_GATEWAY_TIMEOUT_SECONDS,
    DEFAULT_GATEWAY_TIMEOUT_SECONDS,
    CardGateway,
)
from billing.invoice_repository import InvoiceRepository
from billing.models import metadata
from billing.repository import BillingRepository
from mercato.contracts import billing as contract
from mercato.db import Database
from mercato.errors import EXPECTED, PaymentRequired
from mercato.identity import BUYER, OPERATOR, service_identity
from mercato.inbox import handles_event
from mercato.service import MercatoService
from mercato.timers import configured_timer
from mercato.transport import TimedRpcProxy, rpc
from mercato.validation import PageSchema, dump, load

RECOVERY_INTERVAL_KEY = "PAYMENT_RECOVERY_INTERVAL_SECONDS"
RECOVERY_GRACE_KEY = "PAYMENT_RECOVERY_GRACE_SECONDS"
DEFAULT_RECOVERY_INTERVAL_SECONDS = 5.0
DEFAULT_RECOVERY_GRACE_SECONDS = 60.0
INVOICE_ISSUE_KEY = "INVOICE_ISSUE_SECONDS"
DEFAULT_INVOICE_ISSUE_SECONDS = 5.0
# billing asks orders inside a caller's request (an invoice, a bill): well within the
# gateway's budget
ORDERS_TIMEOUT_KEY = "ORDERS_TIMEOUT_SECONDS"
DEFAULT_ORDERS_TIMEOUT_SECONDS = 5.0


class _OrdersAsBilling:
    """orders' ``order_facts``, asked as billing's own work (orders answers a service
    only), the worker's caller restored after."""

    def __init__(self, service: BillingService) -> None:
        self._service = service

    def order_facts(self, order_ids: list[str]) -> dict:
        caller = self._service.caller
        person = caller.identity
        caller.act_as(service_identity(self._service.name))
        try:
            return self._service.orders.order_facts(order_ids)
        finally:
            if person is not None:
                caller.act_as(person)


class BillingService(MercatoService):
    name = "billing"

    db = Database(
        metadata,
        repositories={
            "billing": BillingRepository,
            "cards": CardRepository,
            "bills": BillRepository,
            "invoices": InvoiceRepository,
        },
    )
    config = Config()
    card_gateway = CardGateway()
    # the sellers' details printed on invoices
    catalog = TimedRpcProxy("catalog")
    # what an order billing never heard of is for (``order_facts``)
    orders = TimedRpcProxy(
        "orders", timeout=DEFAULT_ORDERS_TIMEOUT_SECONDS, setting=ORDERS_TIMEOUT_KEY
    )

    @rpc(expected_exceptions=EXPECTED)
    def pay_order(self, payload: dict) -> dict:
        """Pay an order, exactly once however often it is asked (orders calls this with
        the buyer as the caller).

        Payload::

            {"order_id": "ord_…", "account_id": "acc_buyer…",
             "payer_account_id": "acc_buyer…",       # the reseller, for method reseller
             "amount": {"amount": 129900, "currency": "USD"},
             "enterprise_project_id": "default",     # optional, default "default"
             "payment_method": "balance" | "credit_card" | "credit" | "reseller",
             "card": {"token": "tok_…"} | {"card_id": "card_…"}}
                                                      # credit_card only: a token from
                                                      # the card provider, or a kept card

        Answer (the order's payment)::

            {"id": "pay_…", "order_id": "ord_…", "status": "succeeded",
             "payment_method": "balance", "amount": {"amount": 129900, "currency": "USD"},
             "failure_code": null, "failure_reason": null, "account_id": "acc_…",
             "payer_account_id": "acc_…", "enterprise_project_id": "default",
             "card": null | {"brand": "visa", "last4": "4242"},
             "created_at": "…", "completed_at": "…"}

        ``status``:

        - ``succeeded``: paid; ``billing.payment.succeeded`` is on its way;
        - ``failed``: the card was declined (``failure_code`` ``card_declined`` or
          ``insufficient_funds``, ``failure_reason`` a sentence for the buyer);
          ``billing.payment.failed`` is emitted; nothing was charged, and paying the
          order again makes a new attempt;
        - ``pending``: the card gateway did not answer in time. Do not treat it as
          failed: billing settles it by itself (it looks the charge up) and announces
          ``billing.payment.succeeded`` or ``billing.payment.failed``.

        An order that already has a succeeded or pending payment answers that payment
        again and charges nothing (the orders service decides whether that is a 409).
        Errors: ``PaymentRequired`` (insufficient balance, credit limit exceeded;
        nothing changed), ``ValidationError`` (fields such as ``amount.amount``,
        ``card`` (a card number sent: never taken), ``card.token`` (unknown to the
        provider, or an expired card), ``card.card_id`` (not a card of the buyer),
        ``payer_account_id``), ``ServiceUnavailable`` (the provider could not say what
        the token is; nothing changed),
        ``Forbidden`` (the caller is not the buyer; for ``reseller``, the payer is not
        the caller's reseller), ``Conflict`` (the order was paid for another amount or
        by another account), ``Unauthenticated``.
        """
        caller = self.caller.require()
        data = load(contract.OrderPaymentRequest, payload)
        payment = usecases.pay_order(self.db, self.clock, self.card_gateway, caller=caller, **data)
        return dump(contract.PaymentResponse, payment)

    @rpc(expected_exceptions=EXPECTED)
    def get_payment(self, order_id: str) -> dict:
        """The payment of an order (same shape as ``pay_order`` answers), for its buyer,
        its payer or an operator; ``NotFound`` otherwise or if it has none."""
        caller = self.caller.require()
        data = load(schemas.IdSchema, {"id": order_id})
        payment = usecases.get_payment(self.db, caller=caller, order_id=data["id"])
        return dump(contract.PaymentResponse, payment)

    @rpc(expected_exceptions=EXPECTED)
    def get_refund(self, order_id: str) -> dict:
        """The refund of an order's payment, for its buyer, its payer (a reseller) or an
        operator; ``NotFound`` otherwise or if it has none::

            {"id": "rfd_…", "payment_id": "pay_…", "order_id": "ord_…",
             "account_id": "acc_buyer…", "payer_account_id": "acc_…",
             "payment_method": "credit_card", "status": "succeeded",
             "amount": {"amount": 129900, "currency": "USD"},
             "reason": "Delivery failed: …",          # the order's cancel reason
             "failure_code": null, "failure_reason": null,
             "created_at": "…", "completed_at": "…"}

        ``status``: ``succeeded`` (the money is back; ``billing.refund.completed`` is on
        its way), ``pending`` (a card refund the card processor has not confirmed yet;
        billing asks again by itself) or ``failed`` (the processor refused a card
        refund, ``failure_code`` ``refund_declined`` or ``charge_not_refundable``;
        ``billing.refund.failed`` tells operators to pay the buyer back another way).
        """
        caller = self.caller.require()
        data = load(schemas.IdSchema, {"id": order_id})
        refund = usecases.get_refund(self.db, caller=caller, order_id=data["id"])
        return dump(schemas.RefundOut, refund)

    @rpc(expected_exceptions=EXPECTED)
    def get_balance(self) -> dict:
        """The caller's account: ``{account_id, balance, credit_limit, credit_used,
        available_credit}``, each a money object. An account that never moved money
        has zeros."""
        caller = self.caller.require()
        return dump(
            contract.BalanceResponse, usecases.get_balance(self.db, account_id=caller.account_id)
        )

    @rpc(expected_exceptions=EXPECTED)
    def top_up(self, payload: dict) -> dict:
        """Add money to the caller's balance from a card, through the card gateway.

        Payload: ``{"amount": {"amount": 50000, "currency": "USD"},
        "card": {"token"} | {"card_id"}, "idempotency_key": "…" (optional: the same
        key answers the first top-up again, charging nothing)}``.

        A declined card raises ``PaymentRequired`` (code ``CARD_DECLINED`` or
        ``INSUFFICIENT_FUNDS``) after recording the failed top-up.

        Answer: ``{id, account_id, status: succeeded|pending, amount,
        card: {brand, last4}, failure_code, failure_reason, created_at, completed_at}``.
        ``pending`` is settled by billing itself (see ``pay_order``); ``get_top_up``
        shows it later.
        """
        caller = self.caller.require()
        data = load(contract.TopUpPayload, payload)
        record = usecases.top_up(
            self.db, self.clock, self.card_gateway, account_id=caller.account_id, **data
        )
        if record["status"] == "failed":
            # recorded (get_top_up shows it), but the caller asked for money it did not get
            raise PaymentRequired(
                f"top-up {record['id']} declined: {record['failure_reason']}",
                code=str(record["failure_code"] or "CARD_DECLINED").upper(),
            )
        return dump(contract.TopUpResponse, record)

    @rpc(expected_exceptions=EXPECTED)
    def bind_card(self, payload: dict) -> dict:
        """Keep a card on the caller's account (the guide's bound card): ``{"token":
        "tok_…"}`` from the card provider. The provider keeps the card; billing keeps
        its reference, brand, last four digits and expiry. Answer: ``{"id": "card_…",
        "brand": "visa", "last4": "4242", "expiry": "12/30", "created_at": "…"}``;
        ``card: {"card_id": …}`` then pays with it. A retry of the same request (its
        request key) answers the first card. ``ValidationError`` naming ``token`` for a
        token the provider does not know or an expired card."""
        caller = self.caller.require()
        data = load(contract.BindCardRequest, payload)
        card = cards.bind_card(
            self.db,
            self.clock,
            self.card_gateway,
            account_id=caller.account_id,
            token=data["token"],
            request_key=self.caller.request_key,
        )
        return dump(contract.CardResponse, card)

    @rpc(expected_exceptions=EXPECTED)
    def list_cards(self, query: dict | None = None) -> dict:
        """The cards the caller's account keeps, newest first: ``{items: [card], total,
        page, page_size}``."""
        caller = self.caller.require()
        data = load(PageSchema, query)
        return dump(
            contract.CardPage, cards.list_cards(self.db, account_id=caller.account_id, **data)
        )

    @rpc(expected_exceptions=EXPECTED)
    def delete_card(self, card_id: str) -> None:
        """Forget one of the caller's cards, at the provider too (``NotFound`` for any
        other account's)."""
        caller = self.caller.require()
        data = load(contract.CardIdRequest, {"card_id": card_id})
        cards.delete_card(
            self.db, self.card_gateway, account_id=caller.account_id, card_id=data["card_id"]
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_top_up(self, top_up_id: str) -> dict:
        """One of the caller's top-ups (as ``top_up`` answers it)."""
        caller = self.caller.require()
        data = load(schemas.IdSchema, {"id": top_up_id})
        record = usecases.get_top_up(self.db, account_id=caller.account_id, top_up_id=data["id"])
        return dump(contract.TopUpResponse, record)

    @rpc(expected_exceptions=EXPECTED)
    def list_transactions(self, query: dict | None = None) -> dict:
        """The caller's ledger movements, newest first; ``query``: ``{page, page_size}``
        (default the first 20)::

            {"items": [{"id": "txn_3f0c…", "kind": "payment" | "top_up" | "refund",
                        "payment_method": "balance" | … | null,
                        "amount": {"amount": -129900, "currency": "USD"},   # signed
                        "balance_after": {…}, "credit_used_after": {…},
                        "order_id": "ord_…" | null, "payment_id": … | null,
                        "top_up_id": … | null, "refund_id": … | null,
                        "buyer_account_id": … | null, "created_at": "…"}],
             "total": 1, "page": 1, "page_size": 20}

        ``page_size`` is at most 100. A reseller's statement holds its customers'
        orders (``buyer_account_id`` names the customer). A refund is a positive
        movement naming the refunded payment (``payment_id``) and its ``refund_id``; a
        card refund shows once the card processor confirmed it.
        """
        caller = self.caller.require()
        data = load(PageSchema, query)
        result = usecases.list_transactions(self.db, account_id=caller.account_id, **data)
        return dump(contract.TransactionPage, result)

    # -- bills and cost analysis --

    @rpc(expected_exceptions=EXPECTED)
    def list_bills(self, query: dict | None = None) -> dict:
        """The caller's bill of one UTC month: its charges and refunds, oldest first,
        and the month's totals per enterprise project. ``query``: ``{month: "YYYY-MM"
        (a UTC month), enterprise_project_id?, page, page_size}``::

            {"items": [{"id": "txn_…", "kind": "charge" | "refund",
                        "order_id": "ord_…", "order_type": "purchase",
                        "product_id": "prd_…", "product_name": "Northwind CRM",
                        "buyer_account_id": "acc_…",
                        "enterprise_project_id": "default",
                        "enterprise_project_name": "default",
                        "amount": {"amount": 129900, "currency": "USD"},  # refund < 0
                        "payment_method": "balance", "occurred_at": "…"}],
             "total": 1, "page": 1, "page_size": 20, "month": "2026-11",
             "totals": [{"buyer_account_id": null,   # a reseller's: its customer
                         "enterprise_project_id": "default",
                         "enterprise_project_name": "default",
                         "charges": {…}, "refunds": {…}, "net": {…}}],
             "total_net": {"amount": 129900, "currency": "USD"}}

        Lines are the payer's: a reseller's bill holds its customers' orders (their
        totals per customer and project). A refund stays in its payment's project. An
        order billing never heard of is asked of orders (``order_facts``). ``ValidationError`` names ``month``,
        ``enterprise_project_id``, ``page`` or ``page_size``.
        """
        caller = self.caller.require()
        data = load(contract.BillsQuery, query)
        return dump(
            contract.BillPage,
            bills.list_bills(
                self.db, account_id=caller.account_id, orders=_OrdersAsBilling(self), **data
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def cost_analysis(self, query: dict | None = None) -> dict:
        """The caller's net spending (charges less refunds) from ``from`` to ``to``
        (UTC days ``YYYY-MM-DD``, both included, at most 366 days), grouped by
        ``group_by`` (``enterprise_project``, the default, ``product`` or ``month``, a
        UTC month)::

            {"from": "2026-11-01", "to": "2026-11-30", "group_by": "product",
             "currency": "USD",
             "series": [{"key": "prd_…", "name": "Northwind CRM",
                         "amount": {"amount": 129900, "currency": "USD"}}],
             "total": {"amount": 129900, "currency": "USD"}}

        ``ValidationError`` names ``from``, ``to`` (before ``from``, or too long a
        span) or ``group_by``.
        """
        caller = self.caller.require()
        data = load(contract.CostAnalysisQuery, query)
        result = bills.cost_analysis(
            self.db,
            account_id=caller.account_id,
            from_day=data["from"],
            to_day=data["to"],
            group_by=data["group_by"],
            orders=_OrdersAsBilling(self),
        )
        return dump(contract.CostAnalysisResponse, result)

    @handles_event("orders.order.created")
    def on_order_created(self, event) -> None:
        """Keep what the order is for (``billed_orders``): the product and type its bill
        lines show. A repeat changes nothing."""
        bills.record_billed_order(self.db, event.data, created_at=event.occurred_at)

    @handles_event("iam_agency.enterprise_project.created")
    def on_enterprise_project_created(self, event) -> None:
        """Copy the project (the name bills show)."""
        bills.keep_enterprise_project(self.db, event.data)

    @handles_event("iam_agency.enterprise_project.disabled")
    def on_enterprise_project_disabled(self, event) -> None:
        """Keep the copy's status (an older revision arriving late changes nothing)."""
        bills.keep_enterprise_project(self.db, event.data)

    @handles_event("iam_agency.enterprise_project.enabled")
    def on_enterprise_project_enabled(self, event) -> None:
        """Keep the copy's status (an older revision arriving late changes nothing)."""
        bills.keep_enterprise_project(self.db, event.data)

    # -- invoices --

    @rpc(expected_exceptions=EXPECTED)
    def request_invoice(self, payload: dict) -> dict:
        """Ask for an invoice (buyer): ``{order_ids: [1..50], title, tax_id, address,
        email}``. Each order must be the caller's own, paid by the caller itself, not
        refunded and on no live invoice, all of one seller. Answers the invoice (as
        ``get_invoice``) with ``status: "requested"``; the issuing sweep numbers it.

        Errors: ``NotFound`` (an order that is not the caller's), ``Conflict`` with
        ``fields.order_ids`` ``["<order id>: not_paid" | "refunded" | "already_invoiced"
        | "paid_by_reseller", …]``, ``BusinessRuleViolation`` ``INVOICE_SELLERS_DIFFER``,
        ``ValidationError`` naming each field."""
        caller = self.caller.require_role(BUYER)
        request = load(contract.InvoiceRequest, payload)
        return dump(
            contract.InvoiceResponse,
            invoices.request_invoice(
                self.db,
                self.clock,
                account_id=caller.account_id,
                request=request,
                orders=_OrdersAsBilling(self),
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_invoices(self, query: dict | None = None) -> dict:
        """The caller's invoices, newest first: ``{page, page_size, status?}``."""
        caller = self.caller.require_role(BUYER)
        data = load(contract.InvoiceQuery, query)
        return dump(
            contract.InvoicePage,
            invoices.list_invoices(self.db, account_id=caller.account_id, **data),
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_invoice(self, invoice_id: str) -> dict:
        """One of the caller's invoices::

            {"id": "inv_…", "number": "INV-2026-000042" | null, "status": "issued",
             "title", "tax_id", "address", "email",
             "seller": {id, company_name, email, mobile, support_range} | null,
             "orders": [{"order_id", "product_name", "amount": {…}}], "amount": {…},
             "created_at", "issued_at", "returned_at", "return_reason",
             "reissue_of", "reissued_as"}

        ``NotFound`` for anyone else's."""
        caller = self.caller.require_role(BUYER)
        data = load(contract.InvoiceIdRequest, {"invoice_id": invoice_id})
        return dump(
            contract.InvoiceResponse,
            invoices.get_invoice(self.db, account_id=caller.account_id, **data),
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_invoice_pdf(self, invoice_id: str) -> dict:
        """The PDF of one of the caller's invoices, as issued: ``{filename,
        content_type: "application/pdf", content_base64}``; ``Conflict`` before it is
        issued, ``NotFound`` for anyone else's."""
        caller = self.caller.require_role(BUYER)
        data = load(contract.InvoiceIdRequest, {"invoice_id": invoice_id})
        return dump(
            contract.InvoicePdfResponse,
            invoices.get_invoice_pdf(self.db, account_id=caller.account_id, **data),
        )

    @rpc(expected_exceptions=EXPECTED)
    def return_invoice(self, invoice_id: str, payload: dict) -> dict:
        """Return an issued invoice: ``{reason}``; its orders may be invoiced again.
        ``Conflict`` for an invoice that is not issued."""
        caller = self.caller.require_role(BUYER)
        data = load(contract.InvoiceIdRequest, {"invoice_id": invoice_id})
        request = load(contract.InvoiceReturnRequest, payload)
        return dump(
            contract.InvoiceResponse,
            invoices.return_invoice(
                self.db, self.clock, account_id=caller.account_id, reason=request["reason"], **data
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def reissue_invoice(self, invoice_id: str, payload: dict | None = None) -> dict:
        """Reissue a returned invoice: ``{title?, tax_id?, address?, email?}``. Answers
        the new, requested invoice (``reissue_of`` the old one, now ``reissued``).
        ``Conflict`` unless the invoice is returned, or when one of its orders was
        invoiced again meanwhile (``fields.order_ids`` names them)."""
        caller = self.caller.require_role(BUYER)
        data = load(contract.InvoiceIdRequest, {"invoice_id": invoice_id})
        changes = load(contract.InvoiceReissueRequest, payload)
        return dump(
            contract.InvoiceResponse,
            invoices.reissue_invoice(
                self.db, self.clock, account_id=caller.account_id, changes=changes, **data
            ),
        )

    @configured_timer(INVOICE_ISSUE_KEY, DEFAULT_INVOICE_ISSUE_SECONDS)
    def issue_invoices(self) -> None:
        """Issue the requested invoices that are due: the seller's details from the
        catalog, the year's next number, the PDF (safe with several replicas)."""
        invoices.issue_due(self.db, self.clock, self.catalog)

    @rpc(expected_exceptions=EXPECTED)
    def set_credit_limit(self, account_id: str, payload: dict) -> dict:
        """Operators only: grant an account credit up to ``{"amount": {"amount": 100000,
        "currency": "USD"}}`` (0 withdraws it). Answers the account's balance view (as
        ``get_balance``)."""
        operator = self.caller.require_role(OPERATOR)
        data = load(schemas.SetCreditLimitSchema, {**payload, "account_id": account_id})
        view = usecases.set_credit_limit(self.db, self.clock, operator=operator, **data)
        return dump(contract.BalanceResponse, view)

    @rpc(expected_exceptions=EXPECTED)
    def audit_ledger(self) -> dict:
        """Operators only: check the books. ``{"balanced": true, "ledger_total": 0,
        "unbalanced_entries": [], "accounts_out_of_step": [], "payments_out_of_step":
        [], "refunds_out_of_step": []}`` when every entry sums to zero and every account,
        payment and refund agrees with its postings."""
        self.caller.require_role(OPERATOR)
        return usecases.audit_ledger(self.db)

    @handles_event("orders.order.cancelled")
    def on_order_cancelled(self, event) -> None:
        """Refund the payment of an order cancelled after it was paid (its delivery
        failed): the compensation step of the purchase saga, exactly once per payment.

        Acts when the event carries ``payment_id`` and ``refund`` (money). The
        cancellation of an unpaid order is recorded: billing charges that order no
        more, and refunds in full a payment of it that settles anyway. A refund billing must
        refuse (more than the payment took, another currency, a payment that did not
        succeed, or a payment that is not this order's) is dead-lettered for an
        operator, not guessed at: it means orders and billing disagree about money.
        """
        data = event.data
        if not (data.get("payment_id") and data.get("refund")):
            usecases.order_cancelled_unpaid(
                self.db,
                self.clock,
                self.card_gateway,
                order_id=data["order_id"],
                account_id=data["account_id"],
                reason=data["reason"],
            )
            return
        usecases.refund_payment(
            self.db,
            self.clock,
            self.card_gateway,
            payment_id=data["payment_id"],
            order_id=data["order_id"],
            account_id=data["account_id"],
            amount=data["refund"],
            reason=data["reason"],
        )

    @configured_timer(RECOVERY_INTERVAL_KEY, DEFAULT_RECOVERY_INTERVAL_SECONDS)
    def recover_pending_charges(self) -> None:
        """Settle card payments, top-ups and card refunds that a crash or a silent
        gateway left pending (safe with several replicas)."""
        usecases.recover_pending_charges(
            self.db, self.clock, self.card_gateway, grace=self._recovery_grace
        )
        usecases.refund_late_payments(self.db, self.clock, self.card_gateway)

    @property
    def _recovery_grace(self) -> dt.timedelta:
        grace = float(self.config.get(RECOVERY_GRACE_KEY, DEFAULT_RECOVERY_GRACE_SECONDS))
        timeout = float(
            self.config.get(CARD_GATEWAY_TIMEOUT_SECONDS, DEFAULT_GATEWAY_TIMEOUT_SECONDS)
        )
        # a charge still in flight must have timed out before its key is looked up
        return dt.timedelta(seconds=max(grace, 2 * timeout))
