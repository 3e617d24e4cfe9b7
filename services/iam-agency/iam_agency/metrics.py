"""iam-agency's business metrics (the entrypoint and messaging metrics are common to
every service, see ``mercato.metrics``). No label carries an id."""

from prometheus_client import Counter

AGENCY_CHECKS = Counter(
    "mercato_iam_agency_checks_total",
    "Agencies checked in the buyer's cloud account (on schedule, on request, before a "
    "deployment), by result: authorized (as granted), broken (deleted, changed or reused) "
    "or error (the cloud did not answer; nothing changed)",
    ["result"],
)
AGENCY_AUTHORIZATIONS = Counter(
    "mercato_iam_agency_authorizations_total",
    "Buyers' authorisations of the agencies, by result: authorized, refused (the cloud "
    "refused the keys or a call) or error (the cloud did not answer)",
    ["result"],
)
AGENCY_CREDENTIALS = Counter(
    "mercato_iam_agency_credentials_total",
    "Temporary credentials of mkp_agency_trust handed out, by source: cached or assumed "
    "(asked from the cloud's IAM)",
    ["source"],
)
ENTERPRISE_PROJECTS = Counter(
    "mercato_enterprise_projects_total",
    "Changes of buyers' enterprise projects, by change: created (an account's default "
    "included), disabled or enabled (a repeat that changes nothing is not counted)",
    ["change"],
)
