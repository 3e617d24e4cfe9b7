"""The agencies a buyer authorises for image deployments, and their policies by version.

Version 1 of each policy is exactly the document KooGallery publishes in its user guide
(section 9, "Agency Policy Permission Details"). Version 2 adds one Allow statement each
with what Mercato's features need and that text lacks: deleting stacks (release and
compensation), EIPs, reading the buyer's choices for the ordering page, and checking its
own agencies. Version 3 adds one more to ``mkp_deployment_policy``: stopping and starting
the servers of a deployment (a frozen image subscription stops them, its renewal starts
them again); ``mkp_rfs_deployment_policy`` version 3 is its version 2. A new version is a
new entry in ``POLICIES``; ``LATEST_VERSION`` follows.

``mkp_agency_trust`` delegates to Mercato's own cloud account, which creates stacks with
it; ``mkp_rfs_agency_trust`` delegates to the cloud's stack service (``op_svc_rfs``),
which creates the servers and networks of a stack with it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

MKP_AGENCY = "mkp_agency_trust"
RFS_AGENCY = "mkp_rfs_agency_trust"
AGENCY_NAMES = (MKP_AGENCY, RFS_AGENCY)

DEPLOYMENT_POLICY = "mkp_deployment_policy"
RFS_DEPLOYMENT_POLICY = "mkp_rfs_deployment_policy"

# the trusted domain of the stack service's agency (the cloud's own service domain)
RFS_DELEGATE = "op_svc_rfs"
# who mkp_agency_trust trusts: Mercato's own cloud account, named by configuration
MERCATO_DELEGATE = "mercato"


def _allow(*actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions)}


_DEPLOYMENT_V1 = {
    "Version": "1.1",
    "Statement": [
        _allow("kms:cmk:create", "kms:cmk:get", "kms:dek:create"),
        _allow(
            "rf:stack:listStacks",
            "rf:stack:listStackResources",
            "rf:stack:listStackOutputs",
            "rf:stack:createStack",
            "rf:stack:getStackMetadata",
            "rf:stack:updateStack",
        ),
    ],
}

_RFS_DEPLOYMENT_V1 = {
    "Version": "1.1",
    "Statement": [
        _allow("kms:cmk:get", "kms:dek:decrypt"),
        _allow(
            "ecs:diskConfigs:use",
            "ecs:servers:create",
            "ecs:cloudServers:showServer",
            "ecs:cloudServers:get",
            "ecs:serverInterfaces:get",
            "ecs:serverKeypairs:get",
            "ecs:flavors:get",
            "ecs:serverVolumes:use",
            "ecs:cloudServers:createServers",
            "ecs:cloudServers:create",
            "ecs:cloudServers:deleteServers",
            "ecs:cloudServers:delete",
            "ecs:servers:get",
            "ecs:serverInterfaces:use",
            "ecs:securityGroups:use",
        ),
        _allow(
            "evs:volumes:list",
            "evs:volumes:create",
            "evs:volumes:manage",
            "evs:backups:get",
            "evs:volumes:attach",
            "evs:volumes:get",
            "evs:snapshots:get",
        ),
        _allow("ims:images:get", "ims:images:list"),
        _allow(
            "vpc:securityGroups:create",
            "vpc:subnets:update",
            "vpc:routers:update",
            "vpc:networks:get",
            "vpc:ports:get",
            "vpc:ports:update",
            "vpc:ports:create",
            "vpc:securityGroupRules:get",
            "vpc:subnets:create",
            "vpc:subnets:get",
            "vpc:securityGroups:update",
            "vpc:routers:get",
            "vpc:securityGroups:get",
            "vpc:networks:create",
            "vpc:networks:update",
        ),
    ],
}

# what Mercato needs beyond the guide's text (version 2)
DEPLOYMENT_V2_EXTRA = _allow(
    "rf:stack:deleteStack",
    "rf:stack:listStackEvents",
    "ecs:flavors:get",
    "ecs:cloudServers:list",
    "ecs:cloudServers:get",
    "ecs:quotas:get",
    "vpc:networks:get",
    "vpc:subnets:get",
    "vpc:securityGroups:get",
    "vpc:quotas:list",
    "vpc:publicIps:get",
    "evs:volumes:get",
    "ims:images:get",
    "iam:agencies:listAgencies",
    "iam:agencies:getAgency",
    "iam:agencies:deleteAgency",
    "iam:roles:getRole",
    "iam:permissions:listRolesForAgencyOnProject",
)
RFS_DEPLOYMENT_V2_EXTRA = _allow(
    "vpc:publicIps:create",
    "vpc:publicIps:delete",
    "vpc:networks:delete",
    "vpc:subnets:delete",
    "vpc:securityGroups:delete",
    "vpc:securityGroupRules:create",
    "evs:volumes:delete",
)

# what Mercato needs beyond version 2 (version 3): a frozen image subscription's servers
# are stopped, and started again when it is renewed, by Mercato under mkp_agency_trust
DEPLOYMENT_V3_EXTRA = _allow("ecs:cloudServers:stop", "ecs:cloudServers:start")


def _plus(document: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    return {**document, "Statement": [*document["Statement"], statement]}


_DEPLOYMENT_V2 = _plus(_DEPLOYMENT_V1, DEPLOYMENT_V2_EXTRA)
_RFS_DEPLOYMENT_V2 = _plus(_RFS_DEPLOYMENT_V1, RFS_DEPLOYMENT_V2_EXTRA)

# policy name -> version -> document
POLICIES: dict[str, dict[int, dict[str, Any]]] = {
    DEPLOYMENT_POLICY: {
        1: _DEPLOYMENT_V1,
        2: _DEPLOYMENT_V2,
        3: _plus(_DEPLOYMENT_V2, DEPLOYMENT_V3_EXTRA),
    },
    RFS_DEPLOYMENT_POLICY: {1: _RFS_DEPLOYMENT_V1, 2: _RFS_DEPLOYMENT_V2, 3: _RFS_DEPLOYMENT_V2},
}
LATEST_VERSION = 3


@dataclass(frozen=True)
class AgencyDefinition:
    """One agency Mercato asks for: its name, who it trusts, its policy."""

    name: str
    delegate: str  # MERCATO_DELEGATE or the cloud service's domain name
    policy_name: str
    description: str

    def document(self, version: int) -> dict[str, Any]:
        """The policy document of ``version`` (a copy: callers may keep it)."""
        return copy.deepcopy(POLICIES[self.policy_name][version])


AGENCIES: dict[str, AgencyDefinition] = {
    MKP_AGENCY: AgencyDefinition(
        MKP_AGENCY,
        MERCATO_DELEGATE,
        DEPLOYMENT_POLICY,
        "Mercato deploys purchased images into this account as stacks",
    ),
    RFS_AGENCY: AgencyDefinition(
        RFS_AGENCY,
        RFS_DELEGATE,
        RFS_DEPLOYMENT_POLICY,
        "The stack service creates the servers and networks of Mercato's stacks",
    ),
}

# agencies KooGallery no longer uses (guide section 9): reported with this advice
DEPRECATED_AGENCIES: dict[str, str] = {
    name: f"Mercato no longer uses {name}: delete it in your cloud account's IAM console "
    "(Agencies), as the guide's 'Canceling Agency Authorization' describes."
    for name in ("mkp_ims_trust", "mkp_admin_trust", "mkp_rf_admin_trust", "mkp_obs_trust")
}


def policy_versions() -> tuple[int, ...]:
    return tuple(sorted(POLICIES[DEPLOYMENT_POLICY]))


def document(policy_name: str, version: int) -> dict[str, Any]:
    return copy.deepcopy(POLICIES[policy_name][version])
