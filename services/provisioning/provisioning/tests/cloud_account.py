"""A buyer's cloud account in the cloud simulator, set up as iam-agency leaves it once
the buyer has authorised Mercato: the two agencies with their custom policies granted
on the project, made through the IAM SDK with the account's admin keys. Temporary
credentials of ``mkp_agency_trust`` are then asked for by Mercato's own account
(assume_role), as iam-agency does, so that provisioning's driver runs under exactly
what the policy allows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from iam_agency import policies
from mercato_testing.cloud import assume, create_agency, global_client, grant_policy

MKP_AGENCY, RFS_AGENCY = policies.MKP_AGENCY, policies.RFS_AGENCY
RFS_SERVICE = policies.RFS_DELEGATE

# the latest version of the two policies (the guide's section 9 and what Mercato adds),
# as iam-agency grants them
DEPLOYMENT_POLICY: dict[str, Any] = policies.document(
    policies.DEPLOYMENT_POLICY, policies.LATEST_VERSION
)
RFS_POLICY: dict[str, Any] = policies.document(
    policies.RFS_DEPLOYMENT_POLICY, policies.LATEST_VERSION
)


def without(policy: dict[str, Any], *actions: str) -> dict[str, Any]:
    """``policy`` with ``actions`` taken out of every statement."""
    document = copy.deepcopy(policy)
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a not in actions]
    return document


def authorise(
    url: str,
    buyer: dict[str, Any],
    mercato: dict[str, Any],
    *,
    deployment_policy: dict[str, Any] = DEPLOYMENT_POLICY,
    rfs_policy: dict[str, Any] = RFS_POLICY,
) -> None:
    """Both agencies in the buyer's account, their policies granted on its project."""
    iam = global_client(url, buyer)
    for agency, trusted, document, policy_name in (
        (MKP_AGENCY, mercato["domain_name"], deployment_policy, policies.DEPLOYMENT_POLICY),
        (RFS_AGENCY, RFS_SERVICE, rfs_policy, policies.RFS_DEPLOYMENT_POLICY),
    ):
        agency_id = create_agency(iam, buyer, agency, trusted)
        grant_policy(
            iam,
            buyer,
            agency_id,
            document["Statement"],
            policy_name,
            version=document["Version"],
            description="Mercato deployments",
        )


@dataclass
class AgencyStandIn:
    """What iam-agency knows of one Mercato account: its cloud account, Mercato's own,
    the policy granted, and (``refuse``) the error code it answers instead."""

    url: str
    buyer: dict[str, Any]
    mercato: dict[str, Any]
    policy: dict[str, Any] = field(default_factory=lambda: DEPLOYMENT_POLICY)
    refuse: str | None = None

    def credentials(self) -> dict[str, Any]:
        """Temporary credentials of ``mkp_agency_trust``, assumed by Mercato's account."""
        answer = assume(global_client(self.url, self.mercato), self.buyer, MKP_AGENCY)
        return {
            "provider": "simulated",
            "region": self.buyer["region"],
            "domain_id": self.buyer["domain_id"],
            "project_id": self.buyer["project_id"],
            "access_key": answer["access"],
            "secret_key": answer["secret"],
            "security_token": answer["securitytoken"],
            "expires_at": answer["expires_at"],
            "policy": self.policy,
        }
