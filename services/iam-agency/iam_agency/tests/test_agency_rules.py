"""The agencies' rules without a cloud: the policies by version, the statuses the buyer
sees, readiness, refusals and how a policy found in the cloud differs."""

import json

import pytest

from iam_agency import domain, policies
from iam_agency.settings import Settings
from mercato.errors import Conflict
from mercato.iampolicy import evaluate

# guide section 9, "Agency Policy Permission Details", as published
GUIDE_DEPLOYMENT_POLICY = """
{
  "Version": "1.1",
  "Statement": [
    {"Effect": "Allow", "Action": ["kms:cmk:create", "kms:cmk:get", "kms:dek:create"]},
    {"Effect": "Allow", "Action": ["rf:stack:listStacks", "rf:stack:listStackResources",
      "rf:stack:listStackOutputs", "rf:stack:createStack", "rf:stack:getStackMetadata",
      "rf:stack:updateStack"]}
  ]
}
"""
GUIDE_RFS_DEPLOYMENT_POLICY = """
{
  "Version": "1.1",
  "Statement": [
    {"Effect": "Allow", "Action": ["kms:cmk:get", "kms:dek:decrypt"]},
    {"Effect": "Allow", "Action": ["ecs:diskConfigs:use", "ecs:servers:create",
      "ecs:cloudServers:showServer", "ecs:cloudServers:get", "ecs:serverInterfaces:get",
      "ecs:serverKeypairs:get", "ecs:flavors:get", "ecs:serverVolumes:use",
      "ecs:cloudServers:createServers", "ecs:cloudServers:create",
      "ecs:cloudServers:deleteServers", "ecs:cloudServers:delete", "ecs:servers:get",
      "ecs:serverInterfaces:use", "ecs:securityGroups:use"]},
    {"Effect": "Allow", "Action": ["evs:volumes:list", "evs:volumes:create",
      "evs:volumes:manage", "evs:backups:get", "evs:volumes:attach", "evs:volumes:get",
      "evs:snapshots:get"]},
    {"Effect": "Allow", "Action": ["ims:images:get", "ims:images:list"]},
    {"Effect": "Allow", "Action": ["vpc:securityGroups:create", "vpc:subnets:update",
      "vpc:routers:update", "vpc:networks:get", "vpc:ports:get", "vpc:ports:update",
      "vpc:ports:create", "vpc:securityGroupRules:get", "vpc:subnets:create",
      "vpc:subnets:get", "vpc:securityGroups:update", "vpc:routers:get",
      "vpc:securityGroups:get", "vpc:networks:create", "vpc:networks:update"]}
  ]
}
"""


def test_version_1_is_exactly_the_guides_documents():
    assert policies.document(policies.DEPLOYMENT_POLICY, 1) == json.loads(GUIDE_DEPLOYMENT_POLICY)
    assert policies.document(policies.RFS_DEPLOYMENT_POLICY, 1) == json.loads(
        GUIDE_RFS_DEPLOYMENT_POLICY
    )


@pytest.mark.parametrize(
    ("policy", "extra"),
    [
        (policies.DEPLOYMENT_POLICY, policies.DEPLOYMENT_V2_EXTRA),
        (policies.RFS_DEPLOYMENT_POLICY, policies.RFS_DEPLOYMENT_V2_EXTRA),
    ],
)
def test_version_2_is_version_1_and_one_more_allow_statement(policy, extra):
    v1, v2 = policies.document(policy, 1), policies.document(policy, 2)
    assert v2["Version"] == "1.1"
    assert v2["Statement"] == [*v1["Statement"], extra]
    assert extra["Effect"] == "Allow"


@pytest.mark.parametrize(
    ("policy", "action", "v1", "v2"),
    [
        (policies.DEPLOYMENT_POLICY, "rf:stack:createStack", "allow", "allow"),
        (policies.DEPLOYMENT_POLICY, "rf:stack:deleteStack", "deny", "allow"),
        (policies.DEPLOYMENT_POLICY, "iam:agencies:listAgencies", "deny", "allow"),
        (policies.DEPLOYMENT_POLICY, "iam:agencies:createAgency", "deny", "deny"),
        (policies.DEPLOYMENT_POLICY, "ecs:cloudServers:create", "deny", "deny"),
        (policies.RFS_DEPLOYMENT_POLICY, "ecs:cloudServers:create", "allow", "allow"),
        (policies.RFS_DEPLOYMENT_POLICY, "vpc:publicIps:create", "deny", "allow"),
        (policies.RFS_DEPLOYMENT_POLICY, "evs:volumes:delete", "deny", "allow"),
        (policies.RFS_DEPLOYMENT_POLICY, "rf:stack:createStack", "deny", "deny"),
    ],
)
def test_what_each_version_allows(policy, action, v1, v2):
    assert evaluate(policies.document(policy, 1), action).decision == v1
    assert evaluate(policies.document(policy, 2), action).decision == v2


def test_the_agencies_their_delegates_and_the_deprecated_ones():
    assert list(policies.AGENCIES) == ["mkp_agency_trust", "mkp_rfs_agency_trust"]
    assert policies.AGENCIES["mkp_agency_trust"].policy_name == "mkp_deployment_policy"
    assert policies.AGENCIES["mkp_rfs_agency_trust"].delegate == "op_svc_rfs"
    assert sorted(policies.DEPRECATED_AGENCIES) == [
        "mkp_admin_trust",
        "mkp_ims_trust",
        "mkp_obs_trust",
        "mkp_rf_admin_trust",
    ]
    assert all("delete" in advice for advice in policies.DEPRECATED_AGENCIES.values())
    assert policies.LATEST_VERSION == max(policies.policy_versions()) == 3


def test_version_3_lets_mercato_stop_and_start_servers_under_its_agency():
    v2 = policies.document(policies.DEPLOYMENT_POLICY, 2)
    v3 = policies.document(policies.DEPLOYMENT_POLICY, 3)
    assert v3["Statement"] == [*v2["Statement"], policies.DEPLOYMENT_V3_EXTRA]
    assert policies.DEPLOYMENT_V3_EXTRA == {
        "Effect": "Allow",
        "Action": ["ecs:cloudServers:stop", "ecs:cloudServers:start"],
    }
    for action in ("ecs:cloudServers:stop", "ecs:cloudServers:start"):
        assert evaluate(v2, action).decision == "deny"
        assert evaluate(v3, action).decision == "allow"
    # the job of a stop or a start is read with what version 2 grants already
    assert evaluate(v3, "ecs:cloudServers:get").decision == "allow"
    assert evaluate(v3, "ecs:cloudServers:delete").decision == "deny"
    # the stack service's agency needs nothing more
    assert policies.document(policies.RFS_DEPLOYMENT_POLICY, 3) == policies.document(
        policies.RFS_DEPLOYMENT_POLICY, 2
    )


def test_an_agency_granted_version_2_needs_authorising_again_for_version_3():
    assert domain.effective_status("authorized", 2, 3) == "needs_reauthorization"
    assert domain.effective_status("authorized", 3, 3) == "authorized"


def test_a_document_handed_out_is_a_copy():
    document = policies.document(policies.DEPLOYMENT_POLICY, 2)
    document["Statement"].clear()
    assert policies.document(policies.DEPLOYMENT_POLICY, 2)["Statement"]


@pytest.mark.parametrize(
    ("stored", "granted", "current", "seen"),
    [
        ("authorized", 2, 2, "authorized"),
        ("authorized", 1, 2, "needs_reauthorization"),
        ("authorized", 2, 1, "authorized"),
        ("broken", 1, 2, "broken"),
        ("not_authorized", None, 2, "not_authorized"),
    ],
)
def test_an_agency_granted_an_older_version_needs_reauthorization(stored, granted, current, seen):
    assert domain.effective_status(stored, granted, current) == seen


@pytest.mark.parametrize(
    ("move", "status", "to"),
    [
        ("authorize", "not_authorized", "authorized"),
        ("authorize", "broken", "authorized"),
        ("authorize", "authorized", "authorized"),
        ("break", "authorized", "broken"),
        ("revoke", "authorized", "not_authorized"),
        ("revoke", "broken", "not_authorized"),
    ],
)
def test_agency_moves(move, status, to):
    assert domain.AGENCY.move(move, status) == to


@pytest.mark.parametrize(("move", "status"), [("break", "not_authorized"), ("break", "broken")])
def test_agency_moves_refused(move, status):
    with pytest.raises(Conflict):
        domain.AGENCY.move(move, status)


@pytest.mark.parametrize(
    ("statuses", "ready", "error"),
    [
        ({"a": "authorized", "b": "authorized"}, True, None),
        ({"a": "authorized", "b": "not_authorized"}, False, "AGENCY_NOT_AUTHORIZED"),
        ({"a": "needs_reauthorization", "b": "not_authorized"}, False, "AGENCY_NOT_AUTHORIZED"),
        (
            {"a": "needs_reauthorization", "b": "authorized"},
            False,
            "AGENCY_REAUTHORIZATION_REQUIRED",
        ),
        ({"a": "broken", "b": "authorized"}, False, "AGENCY_REAUTHORIZATION_REQUIRED"),
    ],
)
def test_deployment_readiness(statuses, ready, error):
    answer = domain.readiness(statuses)
    assert (answer["ready"], answer["error"]) == (ready, error)
    assert answer["message"]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ({"a": "authorized", "b": "authorized"}, None),
        ({"a": "broken", "b": "not_authorized"}, "AGENCY_NOT_AUTHORIZED"),
        ({"a": "broken", "b": "needs_reauthorization"}, "AGENCY_BROKEN"),
        ({"a": "authorized", "b": "needs_reauthorization"}, "AGENCY_REAUTHORIZATION_REQUIRED"),
    ],
)
def test_why_credentials_are_refused(statuses, code):
    refusal = domain.credentials_refusal(statuses)
    assert (refusal[0] if refusal else None) == code


def test_a_policy_found_in_the_cloud_compared_with_the_version_granted():
    granted = policies.document(policies.DEPLOYMENT_POLICY, 2)
    reordered = {
        "Version": "1.1",
        "Statement": [
            {**s, "Action": list(reversed(s["Action"]))} for s in reversed(granted["Statement"])
        ],
    }
    assert domain.policy_differences(granted, reordered) == []

    lacking = policies.document(policies.DEPLOYMENT_POLICY, 2)
    lacking["Statement"][-1]["Action"].remove("rf:stack:deleteStack")
    assert domain.policy_differences(granted, lacking) == ["lacks rf:stack:deleteStack"]

    widened = policies.document(policies.DEPLOYMENT_POLICY, 2)
    widened["Statement"].append({"Effect": "Allow", "Action": ["iam:*:*"]})
    assert domain.policy_differences(granted, widened) == ["adds iam:*:*"]

    denying = policies.document(policies.DEPLOYMENT_POLICY, 2)
    denying["Statement"].append({"Effect": "Deny", "Action": ["rf:stack:createStack"]})
    assert domain.policy_differences(granted, denying) == ["has Deny statements"]


def test_settings_default_to_the_latest_policy_and_refuse_an_unknown_one():
    assert Settings.from_config({}).policy_version == policies.LATEST_VERSION
    assert Settings.from_config({"AGENCY_POLICY_VERSION": "1"}).policy_version == 1
    with pytest.raises(ValueError, match="AGENCY_POLICY_VERSION"):
        Settings.from_config({"AGENCY_POLICY_VERSION": "7"})
    with pytest.raises(ValueError, match="AGENCY_CREDENTIALS_SECONDS"):
        Settings.from_config({"AGENCY_CREDENTIALS_SECONDS": "60"})


def test_settings_never_show_mercatos_secret_key():
    settings = Settings.from_config(
        {"MERCATO_CLOUD_ACCESS_KEY": "AKMERCATO", "MERCATO_CLOUD_SECRET_KEY": "very-secret-sk"}
    )
    assert "very-secret-sk" not in repr(settings)


def test_cloud_errors_name_the_call_and_never_a_key():
    from huaweicloudsdkcore.exceptions.exceptions import (
        ClientRequestException,
        ConnectionException,
        SdkError,
        ServerResponseException,
    )

    from iam_agency.cloud import CloudError, _translated

    secrets = ("AKSECRETKEY", "the-secret-key", "the-token")
    refused = ClientRequestException(
        401, SdkError("req-1", "APIGW.0301", "unknown ak AKSECRETKEY with the-secret-key")
    )
    with pytest.raises(CloudError) as raised, _translated("ListAgencies", secrets):
        raise refused
    assert raised.value.refused and raised.value.unauthenticated
    assert raised.value.code == "APIGW.0301"
    assert "ListAgencies" in raised.value.message
    assert not any(secret in raised.value.message for secret in secrets)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__

    with pytest.raises(CloudError) as failed, _translated("ShowAgency", secrets):
        raise ServerResponseException(503, SdkError("req-2", "IAM.0001", "busy"))
    assert failed.value.status == 503 and not failed.value.refused

    with pytest.raises(CloudError) as unanswered, _translated("ShowAgency", secrets):
        raise ConnectionException("connection refused")
    assert unanswered.value.status is None and not unanswered.value.refused
