"""orders' business metrics (the entrypoint and messaging metrics are common to every
service, see ``mercato.metrics``)."""

from prometheus_client import Counter, Gauge

ORDERS = Counter(
    "mercato_orders_total",
    "Orders that reached each status: unpaid (placed), paid, delivering, awaiting_acceptance, "
    "completed, cancelled",
    ["status"],
)


# -- unsubscriptions ---------------------------------------------------------------
UNSUBSCRIPTIONS = Counter(
    "mercato_unsubscriptions_total",
    "Unsubscription requests by outcome: requested (a request accepted, an image's too), "
    "refused (422: not allowed, or a refund above what was paid), approved (by the seller, "
    "or at once for an image), rejected, refunded (billing refunded the payer)",
    ["outcome"],
)
UNSUBSCRIPTION_REFUND_OLDEST_APPROVED = Gauge(
    "mercato_unsubscription_refund_oldest_approved_seconds",
    "Age of the oldest approved unsubscription whose refund is not made yet (0 when none); "
    "the promise is a refund within 3 hours of the approval",
)

# -- the subscription lifecycle and renewals --
SUBSCRIPTIONS = Gauge(
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

# -- auto-renewal and upgrades --
RENEWALS_DUE = Gauge(
    "mercato_renewals_due",
    "Subscriptions whose automatic renewal is due now (not yet attempted), as the "
    "auto-renewal sweep last counted them",
)
AUTO_RENEW_FAILURES = Counter(
    "mercato_auto_renew_failures_total",
    "Automatic renewal attempts that could not be paid (balance and credit short) or priced",
)

# -- enterprise projects --
RESOURCE_MOVES = Counter(
    "mercato_resource_moves_total",
    "Purchased apps moved to another enterprise project, by mode: independent or "
    "with_associated (one already in the target is not counted)",
    ["mode"],
)
