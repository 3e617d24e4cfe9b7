"""orders' business metrics (the entrypoint and messaging metrics are common to every
service, see ``mercato.metrics``)."""

from prometheus_client import Counter

ORDERS = Counter(
    "mercato_orders_total",
    "Orders that reached each status: unpaid (placed), paid, delivering, awaiting_acceptance, "
    "completed, cancelled",
    ["status"],
)


# -- the subscription lifecycle and renewals (issue 9, H1) --
import prometheus_client  # noqa: E402

SUBSCRIPTIONS = prometheus_client.Gauge(
    "mercato_subscriptions",
    "Subscriptions (purchased apps) in each status, as the lifecycle sweep last counted them",
    ["status"],
)
SUBSCRIPTION_TRANSITIONS = Counter(
    "mercato_subscription_transitions_total",
    "Lifecycle moves the sweep made: to expired, frozen, released, or a reminder sent",
    ["to"],
)
RENEWALS = Counter(
    "mercato_renewals_total",
    "Renewals applied (paid renewal orders): manual or automatic",
    ["kind"],
)
