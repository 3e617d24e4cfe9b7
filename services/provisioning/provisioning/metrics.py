"""provisioning's business metrics (the entrypoint and messaging metrics are common to
every service, see ``mercato.metrics``). No label carries an id."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "mercato_deliveries_total",
    "Delivery attempts by delivery method and outcome: succeeded, retried (a step failed "
    "or the seller is still creating the instance; tried again later) or failed (the "
    "delivery window passed; the order is cancelled and refunded)",
    ["method", "outcome"],
)
SELLER_CALLS = Counter(
    "mercato_seller_calls_total",
    "Calls to sellers' SaaS endpoints by activity and result: the seller's result code "
    "(000000 success ... 000005 internal error) or unreachable, bad_signature, bad_answer",
    ["activity", "result"],
)
SELLER_CALL_DURATION = Histogram(
    "mercato_seller_call_duration_seconds",
    "Time a seller's SaaS endpoint took to answer (calls that got an answer)",
    ["activity"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
CREDENTIAL_REVEALS = Counter(
    "mercato_credential_reveals_total",
    "Requests to reveal a delivered password, by outcome: revealed or rate_limited",
    ["outcome"],
)
DEPLOYMENTS = Counter(
    "mercato_provisioning_deployments_total",
    "Image deployments by the status they reached: pending (prepared with the order), "
    "creating (the order paid), active, failed (compensated: its stack deleted, the order "
    "refunded), releasing, released",
    ["status"],
)
DEPLOYMENT_STEP_SECONDS = Histogram(
    "mercato_provisioning_deployment_step_seconds",
    "How long each step of an image deployment took, from its start to its completion "
    "(check_agency, prepare_keys, create_stack, network, security_group, eip, volumes, "
    "servers)",
    ["step"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
DEPLOYMENT_COMPENSATIONS = Counter(
    "mercato_provisioning_deployment_compensations_total",
    "Image deployments that compensated (their stack deleted before they failed), by "
    "reason: cloud_error, stack_failed, deadline, policy_denied, agency",
    ["reason"],
)

# -- after the purchase: instance actions (provisioning.instance_actions) ------------------

INSTANCE_ACTIONS = Counter(
    "mercato_instance_actions_total",
    "Attempts of instance actions (freeze, unfreeze, refresh, upgrade, release, "
    "reissue_license, stop_servers, start_servers, release_deployment) by outcome: done, "
    "retried (the seller or the cloud did not answer; asked again with backoff) or failed",
    ["action", "outcome"],
)
INSTANCE_ACTIONS_PENDING = Gauge(
    "mercato_instance_actions_pending",
    "Instance actions not yet done nor failed, by action (refreshed by the sweep)",
    ["action"],
)
INSTANCE_ACTION_OLDEST_PENDING = Gauge(
    "mercato_instance_action_oldest_pending_seconds",
    "Age of the oldest pending instance action, 0 when none (refreshed by the sweep)",
)
