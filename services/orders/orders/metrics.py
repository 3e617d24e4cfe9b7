"""orders' business metrics (the entrypoint and messaging metrics are common to every
service, see ``mercato.metrics``)."""

from prometheus_client import Counter

ORDERS = Counter(
    "mercato_orders_total",
    "Orders that reached each status: unpaid (placed), paid, delivering, awaiting_acceptance, "
    "completed, cancelled",
    ["status"],
)
