"""Signing, agencies, custom policies, grants and temporary credentials through the
cloud's own IAM SDK client."""

from __future__ import annotations

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiam.v3 import (
    AgencyPolicy,
    AgencyPolicyRoleOption,
    AgencyPolicyStatement,
    DeleteAgencyRequest,
    ListAgenciesRequest,
    ListCustomPoliciesRequest,
    ListProjectPermissionsForAgencyRequest,
    ShowAgencyRequest,
    ShowCustomPolicyRequest,
    UpdateAgencyCustomPolicyRequest,
    UpdateAgencyCustomPolicyRequestBody,
)

from mercato_testing.cloud import (
    assume,
    create_agency,
    global_client,
    global_credentials,
    grant_policy,
    trusted_agency,
    unique,
)

READ_AGENCIES = [{"Effect": "Allow", "Action": ["iam:agencies:listAgencies", "iam:roles:getRole"]}]


@pytest.fixture
def accounts(cloud_simulator):
    return cloud_simulator.create_account(unique("buyer")), cloud_simulator.create_account(
        unique("mercato")
    )


def test_admin_keys_are_accepted_and_list_agencies(cloud_simulator, accounts):
    buyer, _ = accounts
    iam = global_client(cloud_simulator.url, buyer)
    assert iam.list_agencies(ListAgenciesRequest(domain_id=buyer["domain_id"])).agencies == []


def test_a_wrong_secret_or_unknown_key_is_refused_with_the_gateway_error(cloud_simulator, accounts):
    buyer, _ = accounts
    for account in (
        {**buyer, "secret_key": "x" * 40},
        {**buyer, "access_key": "UNKNOWNAK0000000000"},
    ):
        with pytest.raises(ClientRequestException) as caught:
            global_client(cloud_simulator.url, account).list_agencies(
                ListAgenciesRequest(domain_id=buyer["domain_id"])
            )
        assert caught.value.status_code == 401
        assert caught.value.error_code == "APIGW.0301"
        assert caught.value.request_id


def test_a_tampered_request_is_refused(cloud_simulator, accounts):
    """The signature covers the path: replaying the headers on another path fails."""
    buyer, _ = accounts
    from huaweicloudsdkcore.sdk_request import SdkRequest

    credentials = global_credentials(buyer)
    host = cloud_simulator.url.removeprefix("http://")
    request = SdkRequest(
        method="GET",
        schema="http",
        host=host,
        resource_path="/v3.0/OS-AGENCY/agencies",
        query_params=[("domain_id", buyer["domain_id"])],
        header_params={"Content-Type": "application/json"},
    )
    signed = credentials.sign_request(request)
    headers = {k: v for k, v in signed.header_params.items()}
    ok = requests.get(f"{cloud_simulator.url}{signed.uri}", headers=headers, timeout=5)
    assert ok.status_code == 200
    assert ok.headers["X-Request-Id"]
    tampered = requests.get(
        f"{cloud_simulator.url}/v3.0/OS-AGENCY/agencies?domain_id=other", headers=headers, timeout=5
    )
    assert tampered.status_code == 401
    assert tampered.json()["error_code"] == "APIGW.0301"


def test_an_old_signature_date_is_refused(cloud_simulator, accounts):
    from huaweicloudsdkcore.sdk_request import SdkRequest

    buyer, _ = accounts
    credentials = global_credentials(buyer)
    request = SdkRequest(
        method="GET",
        schema="http",
        host=cloud_simulator.url.removeprefix("http://"),
        resource_path="/v3.0/OS-AGENCY/agencies",
        query_params=[],
        header_params={"Content-Type": "application/json", "X-Sdk-Date": "20200101T000000Z"},
    )
    signed = credentials.sign_request(request)
    answer = requests.get(
        f"{cloud_simulator.url}{signed.uri}", headers=dict(signed.header_params), timeout=5
    )
    assert answer.status_code == 401
    assert "15 minutes" in answer.json()["error_msg"]


def test_agency_policy_and_grant_round_trip(cloud_simulator, accounts):
    buyer, mercato = accounts
    iam = global_client(cloud_simulator.url, buyer)
    with pytest.raises(ClientRequestException) as caught:  # another account's agencies
        iam.list_agencies(ListAgenciesRequest(domain_id=mercato["domain_id"]))
    assert caught.value.status_code == 403
    agency_id = create_agency(iam, buyer, "mkp_agency_trust", mercato["domain_name"])
    role_id = grant_policy(iam, buyer, agency_id, READ_AGENCIES, unique("mkp_deployment_policy"))

    shown = iam.show_agency(ShowAgencyRequest(agency_id=agency_id)).agency
    assert (shown.name, shown.trust_domain_id, shown.trust_domain_name) == (
        "mkp_agency_trust",
        mercato["domain_id"],
        mercato["domain_name"],
    )
    roles = iam.list_project_permissions_for_agency(
        ListProjectPermissionsForAgencyRequest(project_id=buyer["project_id"], agency_id=agency_id)
    ).roles
    assert [role.id for role in roles] == [role_id]
    assert roles[0].policy.statement[0].action == READ_AGENCIES[0]["Action"]
    listed = iam.list_custom_policies(ListCustomPoliciesRequest()).roles
    second_page = iam.list_custom_policies(ListCustomPoliciesRequest(page=2, per_page=1))
    assert (second_page.roles, second_page.total_number) == ([], 1)
    assert [role.id for role in listed] == [role_id]

    iam.update_agency_custom_policy(
        UpdateAgencyCustomPolicyRequest(
            role_id=role_id,
            body=UpdateAgencyCustomPolicyRequestBody(
                role=AgencyPolicyRoleOption(
                    display_name=listed[0].display_name,
                    type="AX",
                    policy=AgencyPolicy(
                        version="1.1",
                        statement=[
                            AgencyPolicyStatement(action=["iam:agencies:*"], effect="Allow")
                        ],
                    ),
                )
            ),
        )
    )
    role = iam.show_custom_policy(ShowCustomPolicyRequest(role_id=role_id)).role
    assert role.policy.statement[0].action == ["iam:agencies:*"]
    assert role.references == 1

    with pytest.raises(ClientRequestException) as caught:
        create_agency(iam, buyer, "mkp_agency_trust", mercato["domain_name"])
    assert caught.value.status_code == 409

    iam.delete_agency(DeleteAgencyRequest(agency_id=agency_id))
    with pytest.raises(ClientRequestException) as caught:
        iam.show_agency(ShowAgencyRequest(agency_id=agency_id))
    assert caught.value.status_code == 404
    assert caught.value.error_code == "IAM.0004"


def test_temporary_credentials_do_what_the_policy_allows(cloud_simulator, accounts):
    buyer, mercato = accounts
    creds = trusted_agency(
        cloud_simulator.url,
        buyer,
        mercato,
        [*READ_AGENCIES, {"Effect": "Deny", "Action": ["iam:roles:getRole"]}],
    )
    assert creds["expires_at"].endswith("Z")
    iam = global_client(
        cloud_simulator.url,
        {**buyer, "access_key": creds["access"], "secret_key": creds["secret"]},
        creds["securitytoken"],
    )
    names = [
        a.name
        for a in iam.list_agencies(ListAgenciesRequest(domain_id=buyer["domain_id"])).agencies
    ]
    assert creds["name"] in names

    with pytest.raises(ClientRequestException) as caught:  # explicit Deny wins over the Allow
        iam.list_custom_policies(ListCustomPoliciesRequest())
    assert caught.value.status_code == 403
    assert caught.value.error_msg == "Policy doesn't allow iam:roles:listRoles to be performed."
    with pytest.raises(ClientRequestException) as caught:
        iam.show_custom_policy(ShowCustomPolicyRequest(role_id="x"))
    assert caught.value.error_msg == "Policy doesn't allow iam:roles:getRole to be performed."
    with pytest.raises(ClientRequestException) as caught:  # not allowed at all
        iam.delete_agency(DeleteAgencyRequest(agency_id=creds["agency_id"]))
    assert caught.value.status_code == 403


def test_temporary_credentials_need_their_token_and_expire_with_the_clock(
    cloud_simulator, accounts
):
    buyer, mercato = accounts
    creds = trusted_agency(cloud_simulator.url, buyer, mercato, READ_AGENCIES)
    keys = {**buyer, "access_key": creds["access"], "secret_key": creds["secret"]}
    request = ListAgenciesRequest(domain_id=buyer["domain_id"])

    with pytest.raises(ClientRequestException) as caught:
        global_client(cloud_simulator.url, keys).list_agencies(request)
    assert caught.value.status_code == 401
    with pytest.raises(ClientRequestException):
        global_client(cloud_simulator.url, keys, "not-the-token").list_agencies(request)

    iam = global_client(cloud_simulator.url, keys, creds["securitytoken"])
    iam.list_agencies(request)
    cloud_simulator.advance_clock(901)
    with pytest.raises(ClientRequestException) as caught:
        iam.list_agencies(request)
    assert caught.value.status_code == 401
    assert caught.value.error_code == "APIGW.0301"


def test_only_the_trusted_account_may_assume_an_agency(cloud_simulator, accounts):
    buyer, mercato = accounts
    stranger = cloud_simulator.create_account(unique("stranger"))
    iam = global_client(cloud_simulator.url, buyer)
    create_agency(iam, buyer, "mkp_agency_trust", mercato["domain_name"])
    assume(global_client(cloud_simulator.url, mercato), buyer, "mkp_agency_trust", duration=3600)
    with pytest.raises(ClientRequestException) as caught:
        assume(global_client(cloud_simulator.url, stranger), buyer, "mkp_agency_trust")
    assert caught.value.status_code == 403
    with pytest.raises(ClientRequestException) as caught:
        assume(global_client(cloud_simulator.url, mercato), buyer, "mkp_agency_trust", duration=60)
    assert caught.value.status_code == 400


def test_an_account_name_is_unique(cloud_simulator):
    name = unique("acct")
    cloud_simulator.create_account(name)
    with pytest.raises(requests.HTTPError) as caught:
        cloud_simulator.create_account(name)
    assert caught.value.response.status_code == 409
    listed = [a["domain_name"] for a in cloud_simulator.accounts()]
    assert name in listed
    assert "secret_key" not in cloud_simulator.accounts()[0]
