"""SDK clients pointed at the simulator, as Mercato's services build them."""

from __future__ import annotations

import uuid

from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
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


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def global_client(url: str, account: dict, token: str | None = None, client_class=IamClient):
    credentials = GlobalCredentials(
        account["access_key"], account["secret_key"], account["domain_id"]
    )
    if token:
        credentials = credentials.with_security_token(token)
    return client_class.new_builder().with_credentials(credentials).with_endpoints([url]).build()


def project_client(client_class, url: str, account: dict, creds: dict | None = None):
    """A project-scoped client (ECS, VPC, ...) with the account's admin keys or with
    temporary credentials ``{access, secret, securitytoken}``."""
    if creds is None:
        credentials = BasicCredentials(
            account["access_key"], account["secret_key"], account["project_id"]
        )
    else:
        credentials = BasicCredentials(
            creds["access"], creds["secret"], account["project_id"]
        ).with_security_token(creds["securitytoken"])
    return client_class.new_builder().with_credentials(credentials).with_endpoints([url]).build()


def create_agency(iam, account: dict, name: str, trust_domain_name: str) -> str:
    answer = iam.create_agency(
        CreateAgencyRequest(
            body=CreateAgencyRequestBody(
                agency=CreateAgencyOption(
                    name=name,
                    domain_id=account["domain_id"],
                    trust_domain_name=trust_domain_name,
                    duration="FOREVER",
                )
            )
        )
    )
    return answer.agency.id


def grant_policy(iam, account: dict, agency_id: str, statements: list[dict], name: str) -> str:
    role = iam.create_agency_custom_policy(
        CreateAgencyCustomPolicyRequest(
            body=CreateAgencyCustomPolicyRequestBody(
                role=AgencyPolicyRoleOption(
                    display_name=name,
                    type="AX",
                    description="test policy",
                    policy=AgencyPolicy(
                        version="1.1",
                        statement=[
                            AgencyPolicyStatement(action=s["Action"], effect=s["Effect"])
                            for s in statements
                        ],
                    ),
                )
            )
        )
    ).role
    iam.associate_agency_with_project_permission(
        AssociateAgencyWithProjectPermissionRequest(
            project_id=account["project_id"], agency_id=agency_id, role_id=role.id
        )
    )
    return role.id


def assume(iam, trusting: dict, agency_name: str, duration: int = 900) -> dict:
    answer = iam.create_temporary_access_key_by_agency(
        CreateTemporaryAccessKeyByAgencyRequest(
            body=CreateTemporaryAccessKeyByAgencyRequestBody(
                auth=AgencyAuth(
                    identity=AgencyAuthIdentity(
                        methods=["assume_role"],
                        assume_role=IdentityAssumerole(
                            agency_name=agency_name,
                            domain_id=trusting["domain_id"],
                            duration_seconds=duration,
                        ),
                    )
                )
            )
        )
    ).credential
    return {
        "access": answer.access,
        "secret": answer.secret,
        "securitytoken": answer.securitytoken,
        "expires_at": answer.expires_at,
    }


def trusted_agency(url: str, buyer: dict, mercato: dict, statements: list[dict]) -> dict:
    """An agency in ``buyer`` trusting ``mercato`` with ``statements`` granted, and
    temporary credentials of it obtained with Mercato's keys."""
    iam = global_client(url, buyer)
    name = unique("mkp_agency_trust")
    agency_id = create_agency(iam, buyer, name, mercato["domain_name"])
    grant_policy(iam, buyer, agency_id, statements, unique("policy"))
    return {
        "agency_id": agency_id,
        "name": name,
        **assume(global_client(url, mercato), buyer, name),
    }
