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

from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkiam.v3 import (
    AgencyAuth,
    AgencyAuthIdentity,
    AgencyPolicy,
    AgencyPolicyRoleOption,
    AgencyPolicyStatement,
    AssociateAgencyWithProjectPermissionRequest,
    CreateAgencyCustomPolicyRequest,
    CreateAgencyCustomPolicyRequestBody,
    CreateAgencyOption,
    CreateAgencyRequest,
    CreateAgencyRequestBody,
    CreateTemporaryAccessKeyByAgencyRequest,
    CreateTemporaryAccessKeyByAgencyRequestBody,
    IamClient,
    IdentityAssumerole,
)

MKP_AGENCY, RFS_AGENCY = "mkp_agency_trust", "mkp_rfs_agency_trust"
RFS_SERVICE = "op_svc_rfs"

# version 2 of the two policies (the guide's section 9 and what Mercato adds)
DEPLOYMENT_POLICY: dict[str, Any] = {
    "Version": "1.1",
    "Statement": [
        {"Effect": "Allow", "Action": ["kms:cmk:create", "kms:cmk:get", "kms:dek:create"]},
        {
            "Effect": "Allow",
            "Action": [
                "rf:stack:listStacks",
                "rf:stack:listStackResources",
                "rf:stack:listStackOutputs",
                "rf:stack:createStack",
                "rf:stack:getStackMetadata",
                "rf:stack:updateStack",
            ],
        },
        {
            "Effect": "Allow",
            "Action": [
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
            ],
        },
    ],
}
RFS_POLICY: dict[str, Any] = {
    "Version": "1.1",
    "Statement": [
        {"Effect": "Allow", "Action": ["kms:cmk:get", "kms:dek:decrypt"]},
        {
            "Effect": "Allow",
            "Action": [
                "ecs:diskConfigs:use", "ecs:servers:create", "ecs:cloudServers:showServer",
                "ecs:cloudServers:get", "ecs:serverInterfaces:get", "ecs:serverKeypairs:get",
                "ecs:flavors:get", "ecs:serverVolumes:use", "ecs:cloudServers:createServers",
                "ecs:cloudServers:create", "ecs:cloudServers:deleteServers",
                "ecs:cloudServers:delete", "ecs:servers:get", "ecs:serverInterfaces:use",
                "ecs:securityGroups:use",
            ],
        },
        {
            "Effect": "Allow",
            "Action": [
                "evs:volumes:list", "evs:volumes:create", "evs:volumes:manage",
                "evs:backups:get", "evs:volumes:attach", "evs:volumes:get", "evs:snapshots:get",
            ],
        },
        {"Effect": "Allow", "Action": ["ims:images:get", "ims:images:list"]},
        {
            "Effect": "Allow",
            "Action": [
                "vpc:securityGroups:create", "vpc:subnets:update", "vpc:routers:update",
                "vpc:networks:get", "vpc:ports:get", "vpc:ports:update", "vpc:ports:create",
                "vpc:securityGroupRules:get", "vpc:subnets:create", "vpc:subnets:get",
                "vpc:securityGroups:update", "vpc:routers:get", "vpc:securityGroups:get",
                "vpc:networks:create", "vpc:networks:update",
            ],
        },
        {
            "Effect": "Allow",
            "Action": [
                "vpc:publicIps:create", "vpc:publicIps:delete", "vpc:networks:delete",
                "vpc:subnets:delete", "vpc:securityGroups:delete",
                "vpc:securityGroupRules:create", "evs:volumes:delete",
            ],
        },
    ],
}  # fmt: skip


def without(policy: dict[str, Any], *actions: str) -> dict[str, Any]:
    """``policy`` with ``actions`` taken out of every statement."""
    document = copy.deepcopy(policy)
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a not in actions]
    return document


def _iam(url: str, account: dict[str, Any]) -> IamClient:
    credentials = GlobalCredentials(
        account["access_key"], account["secret_key"], account["domain_id"]
    )
    return IamClient.new_builder().with_credentials(credentials).with_endpoints([url]).build()


def _statements(document: dict[str, Any]) -> list[AgencyPolicyStatement]:
    return [
        AgencyPolicyStatement(action=statement["Action"], effect=statement["Effect"])
        for statement in document["Statement"]
    ]


def authorise(
    url: str,
    buyer: dict[str, Any],
    mercato: dict[str, Any],
    *,
    deployment_policy: dict[str, Any] = DEPLOYMENT_POLICY,
    rfs_policy: dict[str, Any] = RFS_POLICY,
) -> None:
    """Both agencies in the buyer's account, their policies granted on its project."""
    iam = _iam(url, buyer)
    for agency, trusted, document, policy_name in (
        (MKP_AGENCY, mercato["domain_name"], deployment_policy, "mkp_deployment_policy"),
        (RFS_AGENCY, RFS_SERVICE, rfs_policy, "mkp_rfs_deployment_policy"),
    ):
        created = iam.create_agency(
            CreateAgencyRequest(
                body=CreateAgencyRequestBody(
                    agency=CreateAgencyOption(
                        name=agency,
                        domain_id=buyer["domain_id"],
                        trust_domain_name=trusted,
                        duration="FOREVER",
                    )
                )
            )
        ).agency
        role = iam.create_agency_custom_policy(
            CreateAgencyCustomPolicyRequest(
                body=CreateAgencyCustomPolicyRequestBody(
                    role=AgencyPolicyRoleOption(
                        display_name=policy_name,
                        type="AX",
                        description="Mercato deployments",
                        policy=AgencyPolicy(
                            version=document["Version"], statement=_statements(document)
                        ),
                    )
                )
            )
        ).role
        iam.associate_agency_with_project_permission(
            AssociateAgencyWithProjectPermissionRequest(
                project_id=buyer["project_id"], agency_id=created.id, role_id=role.id
            )
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
        iam = _iam(self.url, self.mercato)
        answer = iam.create_temporary_access_key_by_agency(
            CreateTemporaryAccessKeyByAgencyRequest(
                body=CreateTemporaryAccessKeyByAgencyRequestBody(
                    auth=AgencyAuth(
                        identity=AgencyAuthIdentity(
                            methods=["assume_role"],
                            assume_role=IdentityAssumerole(
                                agency_name=MKP_AGENCY,
                                domain_id=self.buyer["domain_id"],
                                duration_seconds=900,
                            ),
                        )
                    )
                )
            )
        ).credential
        return {
            "provider": "simulated",
            "region": self.buyer["region"],
            "domain_id": self.buyer["domain_id"],
            "project_id": self.buyer["project_id"],
            "access_key": answer.access,
            "secret_key": answer.secret,
            "security_token": answer.securitytoken,
            "expires_at": answer.expires_at,
            "policy": self.policy,
        }
