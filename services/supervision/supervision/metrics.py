"""supervision's business metrics (the entrypoint and messaging metrics are common to
every service, see ``mercato.metrics``). No label carries an id."""

from prometheus_client import Counter, Gauge, Histogram

FLOW_STEPS = Counter(
    "mercato_supervision_flow_steps_total",
    "Supervision flows that reached each step: awaiting_request, awaiting_confirmation, "
    "in_service, awaiting_acceptance, completed, closed",
    ["step"],
)
APPEALS_OPEN = Gauge(
    "mercato_supervision_appeals_open",
    "Appeals waiting for an operator's decision (refreshed by this replica's sweep)",
)
APPEALS_OVERDUE = Gauge(
    "mercato_supervision_appeals_overdue",
    "Open appeals past their due time of three working days (refreshed by the sweep)",
)
PAYMENT_TO_ACCEPTANCE = Histogram(
    "mercato_supervision_payment_to_acceptance_seconds",
    "Time from an order's payment to the acceptance that completed its flow, by who "
    "accepted: buyer, system (the acceptance period passed) or operator",
    ["accepted_by"],
    buckets=(3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400),
)
