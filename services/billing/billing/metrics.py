"""Billing's business counters (labels bounded: method, outcome, currency code).

Incremented once per outcome, after the commit that made it true: a replayed request
that returns an existing payment counts nothing. A refund made while handling an event
is counted when the use case returns, just before the handler's inbox wrapper commits it
with its inbox row.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SERVICE = "billing"

PAYMENTS = Counter(
    "mercato_payments_total",
    "Payment attempts by method and outcome: succeeded, failed (declined), pending (the "
    "card gateway did not answer; recovery settles it), refused (insufficient funds or credit)",
    ["service", "method", "outcome"],
)
PAYMENT_AMOUNT = Counter(
    "mercato_payment_amount_minor_total",
    "Money taken by succeeded payments, in minor units of the currency",
    ["service", "method", "currency"],
)
REFUNDS = Counter(
    "mercato_refunds_total",
    "Refunds by the refunded payment's method and outcome: succeeded, pending (the card "
    "processor did not answer; recovery asks again), failed (the processor refused a card "
    "refund), rejected (more than was paid, or of a payment that did not succeed)",
    ["service", "method", "outcome"],
)
REFUND_AMOUNT = Counter(
    "mercato_refund_amount_minor_total",
    "Money returned by succeeded refunds, in minor units of the currency",
    ["service", "currency"],
)
TOP_UPS = Counter(
    "mercato_top_ups_total",
    "Balance top-ups by outcome: succeeded, failed, pending",
    ["service", "outcome"],
)

RECOVERY_ERRORS = Counter(
    "mercato_recovery_errors_total",
    "Pending card payments, top-ups and card refunds whose recovery raised (item: payment, "
    "top_up, refund); rolled back, the item stays pending and is tried again next run",
    ["service", "item"],
)

INVOICES = Counter(
    "mercato_invoices_total",
    "Invoices moved to a status: requested, issued, returned, reissued, cancelled (an "
    "order refunded before its invoice was issued)",
    ["service", "status"],
)
INVOICES_PENDING = Gauge(
    "mercato_invoices_pending",
    "Invoices requested and not issued yet, as the last issuing sweep counted them",
    ["service"],
)
INVOICE_ISSUE_FAILURES = Counter(
    "mercato_invoice_issue_failures_total",
    "Attempts to issue an invoice that failed (the catalog did not answer the seller's "
    "details, or did not for another invoice of that seller in the same sweep, or issuing "
    "raised); the invoice backs off and is tried again",
    ["service"],
)


def payment_outcome(method: str, outcome: str, amount: int = 0, currency: str = "") -> None:
    PAYMENTS.labels(SERVICE, method, outcome).inc()
    if outcome == "succeeded":
        PAYMENT_AMOUNT.labels(SERVICE, method, currency).inc(amount)


def top_up_outcome(outcome: str) -> None:
    TOP_UPS.labels(SERVICE, outcome).inc()


def refund_outcome(method: str, outcome: str, amount: int = 0, currency: str = "") -> None:
    REFUNDS.labels(SERVICE, method, outcome).inc()
    if outcome == "succeeded":
        REFUND_AMOUNT.labels(SERVICE, currency).inc(amount)


def recovery_error(item: str) -> None:
    RECOVERY_ERRORS.labels(SERVICE, item).inc()


def invoice_moved(status: str, count: int = 1) -> None:
    INVOICES.labels(SERVICE, status).inc(count)


def invoices_pending(count: int) -> None:
    INVOICES_PENDING.labels(SERVICE).set(count)


def invoice_issue_failed() -> None:
    INVOICE_ISSUE_FAILURES.labels(SERVICE).inc()
