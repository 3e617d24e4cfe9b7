"""Invoices: a buyer asks for one for its paid orders of one seller; billing issues it
(a number, the seller's details, a PDF) shortly after, by a sweep.

Rules of a request (``request_invoice``), each order checked against billing's own
books: it is the caller's order (else ``NotFound``, as for an order billing never
heard of), the caller paid it itself (a reseller's customer's order is
``paid_by_reseller``), its payment succeeded (``not_paid``), it has no refund that
succeeded or may still succeed (``refunded``) and it is on no live invoice
(``already_invoiced``): ``Conflict`` naming each order and why in
``fields.order_ids``. The orders must be of one seller (422 ``INVOICE_SELLERS_DIFFER``).
Two requests for the same order at once: the partial unique index of
``invoice_orders`` lets one win; the other rolls back whole and is a ``Conflict``.

Issuing (``issue_due``, the ``INVOICE_ISSUE_SECONDS`` timer): the sweep leases due
invoices (``SKIP LOCKED``), asks the catalog for each seller's details outside any
transaction, then issues each invoice in its own transaction: the year's next number
under the counter row's lock (numbers run without gaps: a rollback gives the number
back), the PDF rendered and kept, the status, ``billing.invoice.issued``. A failure
backs off (``issue_due_at``) and is tried again.

An issued invoice never changes: a correction is a return (``return_invoice``: its
orders are freed) and a reissue (``reissue_invoice``: a new invoice for the same
orders, the old one ``reissued``).

A refunded order is on no live invoice, both ways: the transaction that books a refund
(``end_for_refund``, from the refund use cases, a card refund once the processor
confirmed it) cancels a requested invoice of the order (``cancelled``,
``billing.invoice.cancelled``) and returns an issued one (``returned``, reason "order
<id> was refunded", ``billing.invoice.returned``); and issuing re-reads the orders
under the invoice's row lock, so an invoice whose order was refunded (or is not paid)
after the request, in a transaction that did not see the invoice yet, is cancelled
instead of numbered (no number is used).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from billing import bills, domain, invoice_pdf, metrics
from billing.invoice_repository import (
    CANCELLED,
    ISSUED,
    REISSUED,
    REQUESTED,
    RETURNED,
    OrderStanding,
)
from billing.models import BilledOrder, Invoice, InvoiceDocument, InvoiceOrder
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, Conflict, NotFound

_log = logging.getLogger(__name__)

INVOICE_REQUESTED = "billing.invoice.requested"
INVOICE_ISSUED = "billing.invoice.issued"
INVOICE_RETURNED = "billing.invoice.returned"
INVOICE_CANCELLED = "billing.invoice.cancelled"
SELLERS_DIFFER = "INVOICE_SELLERS_DIFFER"

NOT_PAID, REFUNDED, ALREADY_INVOICED, PAID_BY_RESELLER = (
    "not_paid",
    "refunded",
    "already_invoiced",
    "paid_by_reseller",
)
# a refund that took the money back, or a card refund the processor may still confirm
_REFUNDING = (domain.SUCCEEDED, domain.PENDING)

ISSUE_BATCH = 20
# how long a sweep holds the invoices it claimed: far beyond the catalog's answer
ISSUE_LEASE = dt.timedelta(minutes=2)
RETRY_FIRST = dt.timedelta(seconds=30)
RETRY_AT_MOST = dt.timedelta(hours=1)


class SellerDirectory(Protocol):
    """The catalog, as the issuing sweep asks it (``get_seller``)."""

    def get_seller(self, seller_account_id: str) -> dict[str, Any]: ...


# -- requests ---------------------------------------------------------------------------


def request_invoice(
    uow,
    clock: Clock,
    *,
    account_id: str,
    request: Mapping[str, Any],
    orders: bills.OrderFacts | None = None,
) -> dict:
    """A requested invoice for ``request["order_ids"]`` (see the module's rules). An
    order the caller paid that billing never heard of (``billed_orders``) is asked of
    ``orders`` first (``bills.learn_orders``)."""
    order_ids: list[str] = list(request["order_ids"])
    if orders is not None:
        unknown = uow.invoices.unknown_paid_orders(account_id, order_ids)
        if unknown:
            bills.learn_orders(uow, orders, unknown)
    standings = _standings_of_own(uow, account_id, order_ids)
    _refuse_unfit(standings, order_ids)
    sellers = sorted({standings[order_id].seller_account_id for order_id in order_ids})
    if len(sellers) > 1:
        raise BusinessRuleViolation(
            "an invoice covers the orders of one seller: these are of several",
            {
                "order_ids": [
                    f"{order_id}: seller {standings[order_id].seller_account_id}"
                    for order_id in order_ids
                ]
            },
            code=SELLERS_DIFFER,
        )
    now = clock.now()
    invoice = _new_invoice(
        account_id,
        sellers[0],
        [standings[order_id] for order_id in order_ids],
        details=request,
        now=now,
    )
    return _add(uow, invoice, now=now, moved=(REQUESTED,))


def _standings_of_own(uow, account_id: str, order_ids: list[str]) -> dict[str, OrderStanding]:
    standings = uow.invoices.standings(order_ids)
    for order_id in order_ids:
        standing = standings.get(order_id)
        if standing is None or standing.account_id != account_id:
            uow.rollback()
            raise NotFound(f"order {order_id} not found")
    return standings


def _refusals(standings: Mapping[str, OrderStanding], order_ids: Iterable[str]) -> list[str]:
    """``"<order id>: <why>"`` for each order that may not be invoiced."""
    refused = []
    for order_id in order_ids:
        standing = standings[order_id]
        reason = None
        if standing.payer_account_id != standing.account_id or (
            standing.payment_payer is not None and standing.payment_payer != standing.account_id
        ):
            reason = PAID_BY_RESELLER
        elif standing.payment_status != domain.SUCCEEDED:
            reason = NOT_PAID
        elif standing.refund_status in _REFUNDING:
            reason = REFUNDED
        elif standing.live_invoice_id is not None:
            reason = ALREADY_INVOICED
        if reason is not None:
            refused.append(f"{order_id}: {reason}")
    return refused


def _refuse_unfit(standings: Mapping[str, OrderStanding], order_ids: list[str]) -> None:
    refused = _refusals(standings, order_ids)
    if refused:
        raise Conflict(
            "some orders cannot be invoiced: " + "; ".join(refused), {"order_ids": refused}
        )


def _new_invoice(
    account_id: str,
    seller_account_id: str,
    standings: list[OrderStanding],
    *,
    details: Mapping[str, Any],
    now: dt.datetime,
    reissue_of: str | None = None,
) -> tuple[Invoice, list[InvoiceOrder]]:
    currencies = {standing.currency for standing in standings}
    currency = str(standings[0].currency)
    if len(currencies) > 1:  # one marketplace currency: never in practice
        raise BusinessRuleViolation(
            "an invoice is in one currency: these orders were paid in several",
            {"order_ids": [f"{s.order_id}: {s.currency}" for s in standings]},
        )
    invoice = Invoice(
        id=new_id("inv"),
        account_id=account_id,
        number=None,
        status=REQUESTED,
        seller_account_id=seller_account_id,
        title=details["title"],
        tax_id=details["tax_id"],
        address=details["address"],
        email=details["email"],
        amount=sum(int(standing.paid or 0) for standing in standings),
        currency=currency,
        seller=None,
        reissue_of=reissue_of,
        reissued_as=None,
        return_reason=None,
        issue_attempts=0,
        issue_due_at=now,
        issue_claimed_until=None,
        created_at=now,
        updated_at=now,
        issued_at=None,
        returned_at=None,
    )
    orders = [
        InvoiceOrder(
            invoice_id=invoice.id,
            order_id=standing.order_id,
            amount=int(standing.paid or 0),
            currency=currency,
            active=True,
        )
        for standing in standings
    ]
    return invoice, orders


def _add(
    uow,
    new: tuple[Invoice, list[InvoiceOrder]],
    *,
    now: dt.datetime,
    moved: tuple[str, ...],
    replaced: Invoice | None = None,
) -> dict:
    invoice, orders = new
    if not uow.invoices.add_invoice(invoice, orders):
        # another request put one of the orders on its invoice first: nothing of this
        # one stays, and the orders are told as they stand now
        order_ids = [order.order_id for order in orders]
        uow.rollback()
        refused = _refusals(uow.invoices.standings(order_ids), order_ids)
        uow.rollback()
        raise Conflict(
            "some orders cannot be invoiced: another invoice took them",
            {"order_ids": refused or [f"{order_id}: {ALREADY_INVOICED}" for order_id in order_ids]},
        )
    if replaced is not None:
        replaced.status = REISSUED
        replaced.reissued_as = invoice.id
        replaced.updated_at = now
    uow.emit(
        INVOICE_REQUESTED,
        subject=invoice.id,
        account_id=invoice.account_id,
        data={
            **_event_base(invoice, orders),
            "reissue_of": invoice.reissue_of,
            "requested_at": now,
        },
    )
    names = uow.invoices.product_names(order.order_id for order in orders)
    uow.commit()
    for status in moved:
        metrics.invoice_moved(status)
    return invoice_view(invoice, orders, names)


# -- reading ----------------------------------------------------------------------------


def list_invoices(
    uow, *, account_id: str, status: str | None = None, page: int = 1, page_size: int = 20
) -> dict:
    found = uow.invoices.page(account_id, status, page, page_size)
    names = uow.invoices.product_names(
        order.order_id for invoice in found.items for order in invoice.orders
    )
    return found.view(lambda invoice: invoice_view(invoice, invoice.orders, names))


def get_invoice(uow, *, account_id: str, invoice_id: str) -> dict:
    invoice = _own(uow, account_id, invoice_id)
    names = uow.invoices.product_names(order.order_id for order in invoice.orders)
    return invoice_view(invoice, invoice.orders, names)


def get_invoice_pdf(uow, *, account_id: str, invoice_id: str) -> dict:
    """The PDF as it was issued: ``{filename, content_type, content_base64}``;
    ``Conflict`` while the invoice is not issued yet."""
    invoice = _own(uow, account_id, invoice_id)
    document = uow.invoices.document(invoice.id) if invoice.number else None
    if document is None:
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}: its PDF is made when it is issued",
            {"status": [invoice.status]},
        )
    return {
        "filename": f"{invoice.number}.pdf",
        "content_type": invoice_pdf.CONTENT_TYPE,
        "content_base64": base64.b64encode(document.pdf).decode("ascii"),
    }


def _own(uow, account_id: str, invoice_id: str) -> Invoice:
    invoice = uow.invoices.invoice(invoice_id, account_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return invoice


# -- return and reissue -----------------------------------------------------------------


def return_invoice(uow, clock: Clock, *, account_id: str, invoice_id: str, reason: str) -> dict:
    """An issued invoice returned: its orders may be invoiced again. ``Conflict`` for
    an invoice in any other status."""
    invoice = uow.invoices.lock_invoice(invoice_id, account_id)
    if invoice is None:
        uow.rollback()
        raise NotFound(f"invoice {invoice_id} not found")
    if invoice.status != ISSUED:
        status = invoice.status
        uow.rollback()
        raise Conflict(
            f"invoice {invoice_id} is {status}: only an issued invoice can be returned",
            {"status": [status]},
        )
    orders = _end(uow, invoice, RETURNED, reason, clock.now())
    names = uow.invoices.product_names(order.order_id for order in orders)
    uow.commit()
    metrics.invoice_moved(RETURNED)
    return invoice_view(invoice, orders, names)


def _end(uow, invoice: Invoice, status: str, reason: str, now: dt.datetime) -> list[InvoiceOrder]:
    """``invoice`` (locked) ``returned`` (issued) or ``cancelled`` (requested): its
    orders freed, the event emitted. Answers its orders; the caller commits and counts."""
    invoice.status = status
    invoice.return_reason = reason[:500]
    invoice.updated_at = now
    if status == RETURNED:
        invoice.returned_at = now
    else:
        invoice.issue_due_at = None
        invoice.issue_claimed_until = None
    orders = uow.invoices.orders_of(invoice.id)
    uow.invoices.free_orders(invoice.id)
    if status == RETURNED:
        event, data = INVOICE_RETURNED, {"number": invoice.number, "returned_at": now}
    else:
        event, data = INVOICE_CANCELLED, {"cancelled_at": now}
    uow.emit(
        event,
        subject=invoice.id,
        account_id=invoice.account_id,
        data={**_event_base(invoice, orders), **data, "reason": reason},
    )
    return orders


def end_for_refund(uow, *, order_id: str, now: dt.datetime) -> list[str]:
    """A refund of ``order_id`` is being booked (in that transaction, its commit the
    caller's): a requested invoice of the order is cancelled, an issued one returned,
    each with the reason "order <id> was refunded". Answers the statuses moved to
    (counted here: the refund's transaction commits right after)."""
    moved = []
    for invoice in uow.invoices.lock_live_invoices_of(order_id):
        if invoice.status == REQUESTED:
            status = CANCELLED
        elif invoice.status == ISSUED:
            status = RETURNED
        else:  # pragma: no cover - a live invoice is requested or issued
            continue
        _end(uow, invoice, status, refunded_reason(order_id), now)
        _log.info("invoice %s %s: order %s was refunded", invoice.id, status, order_id)
        moved.append(status)
    for status in moved:
        metrics.invoice_moved(status)
    return moved


def refunded_reason(order_id: str) -> str:
    return f"order {order_id} was refunded"


def reissue_invoice(
    uow, clock: Clock, *, account_id: str, invoice_id: str, changes: Mapping[str, Any]
) -> dict:
    """A new requested invoice for a returned invoice's orders, with ``changes`` to its
    title, tax id, address or email; the returned one becomes ``reissued``.
    ``Conflict`` unless the invoice is returned (and not reissued already), or when
    one of its orders was invoiced again meanwhile (or refunded): naming each."""
    old = uow.invoices.lock_invoice(invoice_id, account_id)
    if old is None:
        uow.rollback()
        raise NotFound(f"invoice {invoice_id} not found")
    if old.status != RETURNED:
        status = old.status
        uow.rollback()
        raise Conflict(
            f"invoice {invoice_id} is {status}: only a returned invoice can be reissued",
            {"status": [status]},
        )
    order_ids = [order.order_id for order in uow.invoices.orders_of(old.id)]
    standings = uow.invoices.standings(order_ids)
    refused = _refusals(standings, order_ids)
    if refused:
        uow.rollback()
        raise Conflict(
            "the invoice's orders cannot all be invoiced again: " + "; ".join(refused),
            {"order_ids": refused},
        )
    details = {
        "title": old.title,
        "tax_id": old.tax_id,
        "address": old.address,
        "email": old.email,
        **{key: value for key, value in changes.items() if value is not None},
    }
    now = clock.now()
    new = _new_invoice(
        account_id,
        old.seller_account_id,
        [standings[order_id] for order_id in order_ids],
        details=details,
        now=now,
        reissue_of=old.id,
    )
    return _add(uow, new, now=now, moved=(REQUESTED, REISSUED), replaced=old)


# -- issuing ----------------------------------------------------------------------------


def issue_due(
    uow,
    clock: Clock,
    catalog: SellerDirectory,
    *,
    batch: int = ISSUE_BATCH,
    lease: dt.timedelta = ISSUE_LEASE,
) -> int:
    """Issue the requested invoices that are due (safe with several replicas: each
    sweep leases its own). Answers how many were issued."""
    now = clock.now()
    lease_until = now + lease
    claimed = uow.invoices.claim_due(now, lease_until, batch)
    uow.commit()
    # nothing is open while the catalog answers: one question per seller and sweep; a
    # seller the catalog failed to answer is not asked again in this sweep (its other
    # invoices back off at once)
    sellers: dict[str, dict[str, Any]] = {}
    unanswered: set[str] = set()
    issued = 0
    for invoice_id, seller_account_id, attempts in claimed:
        if seller_account_id in unanswered:
            _log.warning(
                "invoice %s not issued: the catalog did not answer for seller %s in this "
                "sweep; it is tried again later",
                invoice_id,
                seller_account_id,
            )
            _back_off(uow, clock, invoice_id, lease_until, attempts)
            continue
        try:
            if seller_account_id not in sellers:
                try:
                    sellers[seller_account_id] = dict(catalog.get_seller(seller_account_id))
                except Exception:
                    unanswered.add(seller_account_id)
                    raise
            if _issue(uow, clock, invoice_id, lease_until, sellers[seller_account_id]):
                issued += 1
        except Exception:
            uow.rollback()
            _log.warning(
                "invoice %s could not be issued (attempt %d); it is tried again later",
                invoice_id,
                attempts + 1,
                exc_info=True,
            )
            _back_off(uow, clock, invoice_id, lease_until, attempts)
    metrics.invoices_pending(uow.invoices.pending())
    uow.rollback()
    return issued


def retry_delay(attempts: int) -> dt.timedelta:
    """How long an invoice waits after its ``attempts + 1``-th failed attempt: 30 s,
    doubling, at most an hour."""
    return min(RETRY_FIRST * 2 ** min(attempts, 20), RETRY_AT_MOST)


def _back_off(uow, clock: Clock, invoice_id: str, lease_until: dt.datetime, attempts: int) -> None:
    """Counted as a failure only when this sweep still held the invoice (it was moved)."""
    moved = uow.invoices.issue_failed(invoice_id, lease_until, clock.now() + retry_delay(attempts))
    uow.commit()
    if moved:
        metrics.invoice_issue_failed()


def _issue(
    uow, clock: Clock, invoice_id: str, lease_until: dt.datetime, seller: Mapping[str, Any]
) -> bool:
    invoice = uow.invoices.lock_invoice(invoice_id)
    if invoice is None or invoice.status != REQUESTED or invoice.issue_claimed_until != lease_until:
        # another sweep took it over once this one's lease ran out (or a refund ended it)
        uow.rollback()
        return False
    now = clock.now()
    orders = uow.invoices.orders_of(invoice.id)
    unfit = _unfit_to_issue(uow, [order.order_id for order in orders])
    if unfit:
        # an order refunded (or unpaid) since the request, by a transaction that did not
        # see this invoice: cancelled, no number used
        _end(uow, invoice, CANCELLED, "; ".join(unfit), now)
        uow.commit()
        _log.warning("invoice %s cancelled instead of issued: %s", invoice_id, "; ".join(unfit))
        metrics.invoice_moved(CANCELLED)
        return False
    year = now.astimezone(dt.UTC).year
    number = f"INV-{year}-{uow.invoices.next_number(year):06d}"
    billed = {
        order.order_id: order for order in uow.invoices.billed_orders(o.order_id for o in orders)
    }
    seller_view = {
        "id": invoice.seller_account_id,
        "company_name": seller.get("company_name") or invoice.seller_account_id,
        "email": seller.get("email"),
        "mobile": seller.get("mobile"),
        "support_range": seller.get("support_range"),
    }
    pdf = invoice_pdf.render(
        invoice_pdf.InvoiceDocumentData(
            number=number,
            issued_at=now,
            seller=invoice_pdf.Party(
                seller_view["company_name"],
                [
                    ("Email", seller_view["email"] or "-"),
                    ("Mobile", seller_view["mobile"] or "-"),
                ],
            ),
            buyer=invoice_pdf.Party(
                invoice.title,
                [
                    ("Tax id", invoice.tax_id),
                    ("Address", invoice.address),
                    ("Email", invoice.email),
                ],
            ),
            lines=[line for order in orders for line in _lines(order, billed.get(order.order_id))],
            total=invoice.amount,
            currency=invoice.currency,
        )
    )
    invoice.number = number
    invoice.status = ISSUED
    invoice.issued_at = now
    invoice.seller = seller_view
    invoice.issue_due_at = None
    invoice.issue_claimed_until = None
    invoice.updated_at = now
    uow.invoices.flush()
    uow.invoices.add_document(
        InvoiceDocument(
            invoice_id=invoice.id, pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest(), created_at=now
        )
    )
    uow.emit(
        INVOICE_ISSUED,
        subject=invoice.id,
        account_id=invoice.account_id,
        data={**_event_base(invoice, orders), "number": number, "issued_at": now},
    )
    uow.commit()
    metrics.invoice_moved(ISSUED)
    return True


def _unfit_to_issue(uow, order_ids: list[str]) -> list[str]:
    """Why each of the orders may no longer be invoiced: "order <id> was refunded",
    "order <id> is not paid"."""
    standings = uow.invoices.standings(order_ids)
    unfit = []
    for order_id in order_ids:
        standing = standings.get(order_id)
        if standing is not None and standing.refund_status in _REFUNDING:
            unfit.append(refunded_reason(order_id))
        elif standing is None or standing.payment_status != domain.SUCCEEDED:
            unfit.append(f"order {order_id} is not paid")
    return unfit


def _lines(order: InvoiceOrder, billed: BilledOrder | None) -> list[invoice_pdf.Line]:
    """The order's lines as the invoice prints them; one row with the amount paid when
    its lines do not add up to it (or billing does not know them)."""
    lines = list(billed.lines) if billed is not None else []
    if lines and sum(int(line["amount"]["amount"]) for line in lines) == order.amount:
        return [
            invoice_pdf.Line(
                order_id=order.order_id,
                product=str(line.get("product_name") or billed.product_name),  # type: ignore[union-attr]
                specification=str(line.get("specification_name") or "-"),
                period=invoice_pdf.format_period(line.get("period"), line.get("billing_mode")),
                quantity=int(line.get("quantity") or 1),
                amount=int(line["amount"]["amount"]),
            )
            for line in lines
        ]
    first = lines[0] if lines else {}
    return [
        invoice_pdf.Line(
            order_id=order.order_id,
            product=billed.product_name if billed is not None else "-",
            specification=", ".join(str(line.get("specification_name")) for line in lines) or "-",
            period=invoice_pdf.format_period(first.get("period"), first.get("billing_mode")),
            quantity=sum(int(line.get("quantity") or 1) for line in lines) or 1,
            amount=order.amount,
        )
    ]


# -- views ------------------------------------------------------------------------------


def _event_base(invoice: Invoice, orders: list[InvoiceOrder]) -> dict[str, Any]:
    return {
        "invoice_id": invoice.id,
        "account_id": invoice.account_id,
        "seller_account_id": invoice.seller_account_id,
        "order_ids": [order.order_id for order in orders],
        "amount": {"amount": invoice.amount, "currency": invoice.currency},
    }


def invoice_view(
    invoice: Invoice, orders: Iterable[InvoiceOrder], product_names: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "status": invoice.status,
        "title": invoice.title,
        "tax_id": invoice.tax_id,
        "address": invoice.address,
        "email": invoice.email,
        "seller": invoice.seller,
        "orders": [
            {
                "order_id": order.order_id,
                "product_name": product_names.get(order.order_id, ""),
                "amount": {"amount": order.amount, "currency": order.currency},
            }
            for order in sorted(orders, key=lambda order: order.order_id)
        ],
        "amount": {"amount": invoice.amount, "currency": invoice.currency},
        "created_at": invoice.created_at,
        "issued_at": invoice.issued_at,
        "returned_at": invoice.returned_at,
        "return_reason": invoice.return_reason,
        "reissue_of": invoice.reissue_of,
        "reissued_as": invoice.reissued_as,
    }
