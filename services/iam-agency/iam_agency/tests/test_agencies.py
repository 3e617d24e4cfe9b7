"""iam-agency's agencies in a real container (PostgreSQL, RabbitMQ) against the simulated
cloud (``simulators/cloud``) through the cloud's SDK: authorisation with the buyer's
keys, the checks (on request, on schedule with two replicas, before a deployment),
deletion, the credentials provisioning uses, and what another account may see.

Each test makes its own cloud accounts: Mercato's own and the buyer's. The buyer's
admin keys change the buyer's account behind Mercato's back, as a person in the cloud
console would."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from iam_agency import policies
from iam_agency.cloud import CloudSettings, IamCloud, IamSession, Keys
from iam_agency.service import IamAgencyService
from mercato.clock import ManualClock
from mercato.errors import Conflict, NotFound, ValidationError
from mercato.identity import service_identity
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue, caller, sample, wait_for

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
MKP, RFS = policies.MKP_AGENCY, policies.RFS_AGENCY
LATEST = policies.LATEST_VERSION  # the version authorising grants


# provisioning's sweeps ask for credentials as provisioning itself (mercato.identity)
PROVISIONING = service_identity("provisioning").to_context()


@dataclass
class World:
    config: dict
    clock: ManualClock
    cloud_url: str
    mercato: dict  # Mercato's own cloud account
    buyer_cloud: dict  # the buyer's cloud account (its admin keys)
    buyer: dict  # the buyer's identity in Mercato

    def rpc(self, who: dict | None = None) -> ServiceRpcProxy:
        return ServiceRpcProxy(
            "iam_agency", self.config, timeout=60, context_data=signed_context(who)
        )

    def as_buyer(self) -> ServiceRpcProxy:
        return self.rpc(self.buyer)

    def admin_iam(self) -> IamSession:
        """The buyer's IAM admin in its own account, through the SDK."""
        settings = CloudSettings(self.cloud_url, "", "", "", None)
        keys = Keys(self.buyer_cloud["access_key"], self.buyer_cloud["secret_key"])
        return IamCloud(settings).with_keys(keys, self.buyer_cloud["domain_id"])

    def link(self) -> dict:
        with self.as_buyer() as iam:
            return iam.link_cloud_account(
                {
                    "provider": "simulated",
                    "region": self.buyer_cloud["region"],
                    "domain_id": self.buyer_cloud["domain_id"],
                    "project_id": self.buyer_cloud["project_id"],
                }
            )

    def authorize(self) -> dict:
        keys = {
            "access_key": self.buyer_cloud["access_key"],
            "secret_key": self.buyer_cloud["secret_key"],
        }
        with self.as_buyer() as iam:
            return iam.authorize_agencies(keys)

    def agencies(self) -> dict[str, dict]:
        with self.as_buyer() as iam:
            return {item["name"]: item for item in iam.list_agencies()["items"]}

    def check(self) -> dict[str, dict]:
        with self.as_buyer() as iam:
            return {item["name"]: item for item in iam.check_agencies()["items"]}

    def dump_database(self) -> str:
        engine = sa.create_engine(self.config["DATABASE_URL"], poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return "\n".join(
                    str(row)
                    for table in ("cloud_accounts", "agencies", "outbox_messages")
                    for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
                )
        finally:
            engine.dispose()


def _start(container_factory, config, clock):
    container = container_factory(IamAgencyService, config)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


def _sign_up(config, name: str) -> dict:
    with ServiceRpcProxy("iam_agency", config, timeout=30) as iam:
        account = iam.sign_up(
            {
                "name": name,
                "email": f"{name}-{uuid.uuid4().hex[:8]}@example.com",
                "password": "a long enough password",
                "type": "buyer",
            }
        )
    return caller(account["id"], "buyer")


def _world(cloud_simulator, make_service_config, **overrides) -> tuple[dict, dict, dict]:
    run = uuid.uuid4().hex[:8]
    mercato = cloud_simulator.create_account(f"mercato-{run}")
    buyer_cloud = cloud_simulator.create_account(f"buyer-{run}")
    config = make_service_config(
        "iam_agency",
        CLOUD_ENDPOINT=cloud_simulator.url,
        CLOUD_REGION=buyer_cloud["region"],
        MERCATO_CLOUD_DOMAIN_ID=mercato["domain_id"],
        MERCATO_CLOUD_DOMAIN_NAME=mercato["domain_name"],
        MERCATO_CLOUD_ACCESS_KEY=mercato["access_key"],
        MERCATO_CLOUD_SECRET_KEY=mercato["secret_key"],
        **overrides,
    )
    return config, mercato, buyer_cloud


@pytest.fixture
def world(cloud_simulator, make_service_config, container_factory) -> World:
    config, mercato, buyer_cloud = _world(cloud_simulator, make_service_config)
    clock = ManualClock(START)
    _start(container_factory, config, clock)
    buyer = _sign_up(config, "buyer")
    return World(config, clock, cloud_simulator.url, mercato, buyer_cloud, buyer)


def test_authorising_creates_both_agencies_with_the_current_policy_granted(world):
    events = EventQueue(world.config["AMQP_URI"], "iam_agency", "iam_agency.agency.*")
    linked = world.link()
    assert linked["domain_id"] == world.buyer_cloud["domain_id"]
    before = world.agencies()
    assert {item["status"] for item in before.values()} == {"not_authorized"}

    answer = world.authorize()

    items = {item["name"]: item for item in answer["items"]}
    assert answer["deprecated"] == []
    for name, definition in policies.AGENCIES.items():
        assert items[name]["status"] == "authorized"
        assert items[name]["policy"] == {
            "name": definition.policy_name,
            "version": LATEST,
            "document": definition.document(LATEST),
        }
        assert items[name]["problems"] == []
        assert items[name]["authorized_at"] is not None
    assert items[MKP]["delegate"] == world.mercato["domain_name"]
    assert items[RFS]["delegate"] == "op_svc_rfs"

    with world.admin_iam() as admin:
        in_cloud = {agency.name: agency for agency in admin.list_agencies()}
        custom = {policy.name: policy for policy in admin.list_custom_policies()}
        for name, definition in policies.AGENCIES.items():
            policy = custom[definition.policy_name]
            assert policy.document == definition.document(LATEST)
            granted = admin.granted_role_ids(world.buyer_cloud["project_id"], in_cloud[name].id)
            assert granted == {policy.id}
    assert in_cloud[MKP].trust_domain_name == world.mercato["domain_name"]
    assert in_cloud[RFS].trust_domain_name == "op_svc_rfs"

    published = wait_for(lambda: len(events.read()) >= 2 and events.read(), "two events")
    assert sorted((e["type"], e["data"]["agency"]) for e in published) == [
        ("iam_agency.agency.authorized", MKP),
        ("iam_agency.agency.authorized", RFS),
    ]
    assert published[0]["data"]["policy_version"] == LATEST
    assert published[0]["subject"] == world.buyer["account_id"]
    events.close()

    # authorising again changes nothing in the cloud: no second agency or policy
    world.authorize()
    with world.admin_iam() as admin:
        assert sorted(a.name for a in admin.list_agencies()) == [MKP, RFS]
        assert len(admin.list_custom_policies()) == 2


def test_bad_keys_are_refused_and_appear_in_no_log_line_nor_row(world, caplog):
    caplog.set_level(logging.DEBUG)
    world.link()
    wrong_secret = "wrong-" + uuid.uuid4().hex
    unknown_key = "AKUNKNOWN" + uuid.uuid4().hex[:11].upper()
    attempts = [
        {"access_key": world.buyer_cloud["access_key"], "secret_key": wrong_secret},
        {"access_key": unknown_key, "secret_key": wrong_secret},
    ]
    with world.as_buyer() as iam:
        for keys in attempts:
            with pytest.raises(ValidationError) as refused:
                iam.authorize_agencies(keys)
            assert list(refused.value.fields) == ["access_key"]
            assert wrong_secret not in str(refused.value.to_body())
            assert unknown_key not in str(refused.value.to_body())
        with pytest.raises(ValidationError) as missing:
            iam.authorize_agencies({"access_key": unknown_key})
        assert list(missing.value.fields) == ["secret_key"]
    assert {item["status"] for item in world.agencies().values()} == {"not_authorized"}

    world.authorize()  # the right keys, also forgotten

    secrets = [
        wrong_secret,
        unknown_key,
        world.buyer_cloud["secret_key"],
        world.buyer_cloud["access_key"],
    ]
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    stored = world.dump_database()
    for secret in secrets:
        assert secret not in logged
        assert secret not in stored
    assert "authorize_agencies" in caplog.text  # the calls were logged, without the keys


def test_authorising_needs_a_linked_cloud_account(world):
    with world.as_buyer() as iam, pytest.raises(Conflict) as refused:
        iam.authorize_agencies({"access_key": "AK", "secret_key": "SK"})
    assert refused.value.code == "CLOUD_ACCOUNT_NOT_LINKED"
    with world.as_buyer() as iam, pytest.raises(NotFound):
        iam.get_cloud_account()


def test_a_check_finds_an_agency_deleted_in_the_cloud(world):
    world.link()
    world.authorize()
    events = EventQueue(world.config["AMQP_URI"], "iam_agency", "iam_agency.agency.broken")
    with world.admin_iam() as admin:
        rfs = next(a for a in admin.list_agencies() if a.name == RFS)
        admin.delete_agency(rfs.id)

    checked = world.check()

    assert checked[MKP]["status"] == "authorized"
    assert checked[RFS]["status"] == "broken"
    assert [p["code"] for p in checked[RFS]["problems"]] == ["AGENCY_MISSING"]
    broken = events.next()
    assert broken["data"]["agency"] == RFS
    assert broken["data"]["problems"][0]["code"] == "AGENCY_MISSING"
    events.close()
    with world.rpc(PROVISIONING) as internal:
        readiness = internal.deployment_readiness(world.buyer["account_id"])
        assert readiness["ready"] is False
        assert readiness["error"] == "AGENCY_REAUTHORIZATION_REQUIRED"
        with pytest.raises(Conflict) as refused:
            internal.agency_credentials(world.buyer["account_id"], False)
    assert refused.value.code == "AGENCY_BROKEN"

    # authorising again mends it
    world.authorize()
    assert {item["status"] for item in world.agencies().values()} == {"authorized"}


def test_a_deleted_mkp_agency_breaks_it_when_it_cannot_be_assumed(world):
    world.link()
    world.authorize()
    with world.admin_iam() as admin:
        mkp = next(a for a in admin.list_agencies() if a.name == MKP)
        admin.delete_agency(mkp.id)
    with world.rpc(PROVISIONING) as internal, pytest.raises(Conflict) as refused:
        internal.agency_credentials(world.buyer["account_id"], True)
    assert refused.value.code == "AGENCY_BROKEN"
    agencies = world.agencies()
    assert agencies[MKP]["status"] == "broken"
    assert agencies[MKP]["problems"][0]["code"] == "ASSUME_FAILED"


def test_a_check_finds_a_policy_with_an_action_removed(world):
    world.link()
    world.authorize()
    with world.admin_iam() as admin:
        policy = next(
            p for p in admin.list_custom_policies() if p.name == policies.DEPLOYMENT_POLICY
        )
        changed = policies.document(policies.DEPLOYMENT_POLICY, LATEST)
        statement = next(s for s in changed["Statement"] if "rf:stack:deleteStack" in s["Action"])
        statement["Action"].remove("rf:stack:deleteStack")
        admin.update_custom_policy(policy.id, policy.name, "edited in the console", changed)

    checked = world.check()

    assert checked[RFS]["status"] == "authorized"
    assert checked[MKP]["status"] == "broken"
    assert checked[MKP]["problems"] == [
        {
            "code": "POLICY_CHANGED",
            "message": f"mkp_deployment_policy differs from version {LATEST}: "
            "lacks rf:stack:deleteStack",
        }
    ]


def test_a_check_finds_a_policy_granted_to_another_agency(world):
    world.link()
    world.authorize()
    with world.admin_iam() as admin:
        policy = next(
            p for p in admin.list_custom_policies() if p.name == policies.RFS_DEPLOYMENT_POLICY
        )
        other = admin.create_agency(
            "ops_admin", trust_domain_id=None, trust_domain_name="op_svc_rfs", description=""
        )
        admin.grant(world.buyer_cloud["project_id"], other.id, policy.id)

    checked = world.check()

    assert checked[MKP]["status"] == "authorized"
    assert checked[RFS]["status"] == "broken"
    assert checked[RFS]["problems"] == [
        {
            "code": "POLICY_REUSED",
            "message": "mkp_rfs_deployment_policy is also granted to agency ops_admin",
        }
    ]


def test_deprecated_agencies_found_in_the_account_are_reported_with_advice(world):
    world.link()
    with world.admin_iam() as admin:
        for name in ("mkp_admin_trust", "mkp_obs_trust", "someone_elses"):
            admin.create_agency(
                name,
                trust_domain_id=None,
                trust_domain_name=world.mercato["domain_name"],
                description="",
            )
    answer = world.authorize()
    assert [item["name"] for item in answer["deprecated"]] == ["mkp_admin_trust", "mkp_obs_trust"]
    assert all("delete it" in item["advice"] for item in answer["deprecated"])

    with world.admin_iam() as admin:
        admin.delete_agency(next(a.id for a in admin.list_agencies() if a.name == "mkp_obs_trust"))
    with world.as_buyer() as iam:
        rechecked = iam.check_agencies()
    assert [item["name"] for item in rechecked["deprecated"]] == ["mkp_admin_trust"]


def test_a_newer_policy_version_asks_for_reauthorization(
    cloud_simulator, make_service_config, container_factory
):
    config, mercato, buyer_cloud = _world(
        cloud_simulator, make_service_config, AGENCY_POLICY_VERSION="1"
    )
    clock = ManualClock(START)
    v1 = _start(container_factory, config, clock)
    buyer = _sign_up(config, "buyer")
    world = World(config, clock, cloud_simulator.url, mercato, buyer_cloud, buyer)
    world.link()
    answer = world.authorize()
    assert {(i["status"], i["policy"]["version"]) for i in answer["items"]} == {("authorized", 1)}
    # version 1 allows no IAM reads: the check can only assume the agency
    assert {item["status"] for item in world.check().values()} == {"authorized"}
    v1.stop()

    _start(container_factory, {**config, "AGENCY_POLICY_VERSION": ""}, clock)  # latest

    agencies = world.agencies()
    assert {a["status"] for a in agencies.values()} == {"needs_reauthorization"}
    assert {(a["policy"]["version"], a["required_version"]) for a in agencies.values()} == {
        (1, LATEST)
    }
    with world.rpc(PROVISIONING) as internal:
        readiness = internal.deployment_readiness(buyer["account_id"])
        assert readiness["error"] == "AGENCY_REAUTHORIZATION_REQUIRED"
        with pytest.raises(Conflict) as refused:
            internal.agency_credentials(buyer["account_id"], False)
    assert refused.value.code == "AGENCY_REAUTHORIZATION_REQUIRED"

    answer = world.authorize()

    assert {(i["status"], i["policy"]["version"]) for i in answer["items"]} == {
        ("authorized", LATEST)
    }
    with world.admin_iam() as admin:
        custom = {policy.name: policy for policy in admin.list_custom_policies()}
    assert custom[policies.DEPLOYMENT_POLICY].document == policies.document(
        policies.DEPLOYMENT_POLICY, LATEST
    )


def test_agencies_granted_version_2_are_authorised_again_for_stopping_servers(
    cloud_simulator, make_service_config, container_factory
):
    config, mercato, buyer_cloud = _world(
        cloud_simulator, make_service_config, AGENCY_POLICY_VERSION="2"
    )
    clock = ManualClock(START)
    v2 = _start(container_factory, config, clock)
    buyer = _sign_up(config, "buyer")
    world = World(config, clock, cloud_simulator.url, mercato, buyer_cloud, buyer)
    world.link()
    world.authorize()
    with world.as_buyer() as iam:
        stop = {"agency": MKP, "action": "ecs:cloudServers:stop"}
        assert iam.simulate_agency_action(stop)["decision"] == "deny"
    v2.stop()

    _start(container_factory, {**config, "AGENCY_POLICY_VERSION": "3"}, clock)

    agencies = world.agencies()
    assert {a["status"] for a in agencies.values()} == {"needs_reauthorization"}
    assert {(a["policy"]["version"], a["required_version"]) for a in agencies.values()} == {(2, 3)}
    answer = world.authorize()
    assert {(i["status"], i["policy"]["version"]) for i in answer["items"]} == {("authorized", 3)}
    with world.as_buyer() as iam:
        for action in ("ecs:cloudServers:stop", "ecs:cloudServers:start"):
            decided = iam.simulate_agency_action({"agency": MKP, "action": action})
            assert decided["decision"] == "allow"
            assert decided["statement"] == policies.DEPLOYMENT_V3_EXTRA
    with world.admin_iam() as admin:
        custom = {policy.name: policy for policy in admin.list_custom_policies()}
    assert custom[policies.DEPLOYMENT_POLICY].document == policies.document(
        policies.DEPLOYMENT_POLICY, 3
    )
    # and the check finds nothing wrong with what was granted
    assert {item["status"] for item in world.check().values()} == {"authorized"}


def test_deleting_an_agency_invalidates_it_at_once_and_deletes_it_in_the_cloud(world):
    world.link()
    world.authorize()
    events = EventQueue(world.config["AMQP_URI"], "iam_agency", "iam_agency.agency.revoked")
    with world.rpc(PROVISIONING) as internal:
        credentials = internal.agency_credentials(world.buyer["account_id"], False)
    assert credentials["access_key"]

    with world.as_buyer() as iam:
        with pytest.raises(NotFound):
            iam.delete_agency("mkp_admin_trust")
        answer = iam.delete_agency(MKP)

    assert {item["status"] for item in answer["items"]} == {"not_authorized"}
    with world.rpc(PROVISIONING) as internal:
        with pytest.raises(Conflict) as refused:
            internal.agency_credentials(world.buyer["account_id"], False)
        assert refused.value.code == "AGENCY_NOT_AUTHORIZED"
        assert internal.deployment_readiness(world.buyer["account_id"])["error"] == (
            "AGENCY_NOT_AUTHORIZED"
        )
    with world.admin_iam() as admin:
        assert [a.name for a in admin.list_agencies()] == []
    revoked = wait_for(lambda: len(events.read()) >= 2 and events.read(), "two revocations")
    assert sorted(e["data"]["agency"] for e in revoked) == [MKP, RFS]
    events.close()


def test_deleting_the_stack_services_agency_keeps_mercatos(world):
    world.link()
    world.authorize()
    with world.as_buyer() as iam:
        answer = {item["name"]: item for item in iam.delete_agency(RFS)["items"]}
    assert answer[RFS]["status"] == "not_authorized"
    assert answer[MKP]["status"] == "authorized"
    with world.admin_iam() as admin:
        assert [a.name for a in admin.list_agencies()] == [MKP]
    with world.rpc(PROVISIONING) as internal, pytest.raises(Conflict) as refused:
        internal.agency_credentials(world.buyer["account_id"], False)
    assert refused.value.code == "AGENCY_NOT_AUTHORIZED"


def test_credentials_are_kept_until_shortly_before_they_expire_then_renewed(world):
    world.link()
    world.authorize()
    account_id = world.buyer["account_id"]
    cached_before = sample("mercato_iam_agency_credentials_total", source="cached")
    with world.rpc(PROVISIONING) as internal:
        first = internal.agency_credentials(account_id, False)
        again = internal.agency_credentials(account_id, False)
        world.clock.advance(seconds=3600 - 121)
        still = internal.agency_credentials(account_id, False)
        world.clock.advance(seconds=2)  # now within 120 s of the expiry
        renewed = internal.agency_credentials(account_id, False)
        checked = internal.agency_credentials(account_id, True)

    assert first["access_key"] == again["access_key"] == still["access_key"]
    assert renewed["access_key"] != first["access_key"]
    assert sample("mercato_iam_agency_credentials_total", source="cached") - cached_before >= 2
    assert first["policy"] == policies.document(policies.DEPLOYMENT_POLICY, LATEST)
    assert first["domain_id"] == world.buyer_cloud["domain_id"]
    assert first["project_id"] == world.buyer_cloud["project_id"]
    assert checked["access_key"]
    assert world.agencies()[MKP]["checked_at"] == world.clock.now().isoformat()

    # the credentials work, within what the policy allows
    temporary = Keys(renewed["access_key"], renewed["secret_key"], renewed["security_token"])
    settings = CloudSettings(world.cloud_url, "", "", "", None)
    with IamCloud(settings).with_keys(temporary, renewed["domain_id"]) as assumed:
        assert sorted(a.name for a in assumed.list_agencies()) == [MKP, RFS]
    # and never reach the database or an event
    stored = world.dump_database()
    for credentials in (first, renewed):
        assert credentials["secret_key"] not in stored
        assert credentials["security_token"] not in stored


def test_another_account_sees_and_uses_none_of_it(world):
    world.link()
    world.authorize()
    other = _sign_up(world.config, "other")
    with world.rpc(other) as iam:
        assert {item["status"] for item in iam.list_agencies()["items"]} == {"not_authorized"}
        with pytest.raises(NotFound):
            iam.get_cloud_account()
        with pytest.raises(NotFound):
            iam.agency_credentials(world.buyer["account_id"], False)
        with pytest.raises(NotFound):
            iam.deployment_readiness(world.buyer["account_id"])
        with pytest.raises(NotFound):
            iam.delete_agency(MKP)
        assert iam.deployment_readiness(other["account_id"])["error"] == "AGENCY_NOT_AUTHORIZED"
        with pytest.raises(Conflict) as refused:
            iam.agency_credentials(other["account_id"], False)
        assert refused.value.code == "AGENCY_NOT_AUTHORIZED"
    # a call naming no one is not another service's own work (that one is signed)
    with world.rpc() as anonymous:
        with pytest.raises(NotFound):
            anonymous.agency_credentials(world.buyer["account_id"], False)
        with pytest.raises(NotFound):
            anonymous.deployment_readiness(world.buyer["account_id"])
    assert {item["status"] for item in world.agencies().values()} == {"authorized"}


def test_deployment_readiness_answers_from_local_state(world):
    account_id = world.buyer["account_id"]
    with world.rpc(PROVISIONING) as internal:
        assert internal.deployment_readiness(account_id)["error"] == "AGENCY_NOT_AUTHORIZED"
        world.link()
        assert internal.deployment_readiness(account_id)["error"] == "AGENCY_NOT_AUTHORIZED"
        world.authorize()
        assert internal.deployment_readiness(account_id) == {
            "ready": True,
            "error": None,
            "message": "the agencies are authorised",
        }
    with world.as_buyer() as iam:
        assert iam.deployment_readiness(account_id)["ready"] is True


def test_simulating_an_action_answers_the_deciding_statement(world):
    with world.as_buyer() as iam:
        allowed = iam.simulate_agency_action({"agency": MKP, "action": "rf:stack:deleteStack"})
        denied = iam.simulate_agency_action({"agency": RFS, "action": "rf:stack:createStack"})
        with pytest.raises(ValidationError) as refused:
            iam.simulate_agency_action({"agency": MKP, "action": "not an action"})
    assert allowed["decision"] == "allow"
    assert allowed["statement"] == policies.DEPLOYMENT_V2_EXTRA
    assert allowed["policy"] == {"name": "mkp_deployment_policy", "version": LATEST}
    assert denied == {
        "decision": "deny",
        "statement": None,
        "policy": {"name": "mkp_rfs_deployment_policy", "version": LATEST},
    }
    assert list(refused.value.fields) == ["action"]


def test_two_replicas_check_an_account_on_schedule_once(
    cloud_simulator, make_service_config, container_factory
):
    config, mercato, buyer_cloud = _world(
        cloud_simulator,
        make_service_config,
        AGENCY_CHECK_SECONDS=600,
        AGENCY_CHECK_SWEEP_SECONDS=0.1,
    )
    clock = ManualClock(START)
    _start(container_factory, config, clock)
    _start(container_factory, config, clock)
    buyer = _sign_up(config, "buyer")
    world = World(config, clock, cloud_simulator.url, mercato, buyer_cloud, buyer)
    world.link()
    world.authorize()
    events = EventQueue(config["AMQP_URI"], "iam_agency", "iam_agency.agency.broken")
    with world.admin_iam() as admin:
        admin.delete_agency(next(a.id for a in admin.list_agencies() if a.name == RFS))
    checks_before = sum(
        sample("mercato_iam_agency_checks_total", result=result)
        for result in ("authorized", "broken", "error")
    )

    clock.advance(seconds=601)

    broken = events.next()
    assert broken["data"]["agency"] == RFS
    agencies = world.agencies()
    assert agencies[RFS]["status"] == "broken"
    assert agencies[MKP]["status"] == "authorized"
    time.sleep(0.5)  # several more sweeps of both replicas: nothing is due any more
    checks = (
        sum(
            sample("mercato_iam_agency_checks_total", result=result)
            for result in ("authorized", "broken", "error")
        )
        - checks_before
    )
    assert checks == 2  # one check of the account's two agencies, by one replica
    assert events.read() == [broken]
    events.close()


def test_two_authorisations_at_once_make_one_of_each_agency_and_policy(world):
    world.link()
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: world.authorize(), range(2)))
    for answer in answers:
        assert {item["status"] for item in answer["items"]} == {"authorized"}
    with world.admin_iam() as admin:
        assert sorted(a.name for a in admin.list_agencies()) == [MKP, RFS]
        assert sorted(p.name for p in admin.list_custom_policies()) == [
            policies.DEPLOYMENT_POLICY,
            policies.RFS_DEPLOYMENT_POLICY,
        ]


def test_linking_another_cloud_account_revokes_the_agencies_of_the_old_one(world, cloud_simulator):
    world.link()
    world.authorize()
    events = EventQueue(world.config["AMQP_URI"], "iam_agency", "iam_agency.agency.revoked")
    elsewhere = cloud_simulator.create_account(f"elsewhere-{uuid.uuid4().hex[:8]}")
    with world.as_buyer() as iam:
        same = iam.link_cloud_account(
            {
                "region": world.buyer_cloud["region"],
                "domain_id": world.buyer_cloud["domain_id"],
                "project_id": world.buyer_cloud["project_id"],
            }
        )
        assert same["provider"] == "simulated"
        assert {item["status"] for item in iam.list_agencies()["items"]} == {"authorized"}
        moved = iam.link_cloud_account(
            {
                "provider": "simulated",
                "region": elsewhere["region"],
                "domain_id": elsewhere["domain_id"],
                "project_id": elsewhere["project_id"],
            }
        )
        assert moved["domain_id"] == elsewhere["domain_id"]
        assert iam.get_cloud_account()["domain_id"] == elsewhere["domain_id"]
        assert {item["status"] for item in iam.list_agencies()["items"]} == {"not_authorized"}
        with pytest.raises(ValidationError) as refused:
            iam.link_cloud_account({"provider": "aws", "region": "r", "domain_id": "d"})
    assert sorted(refused.value.fields) == ["project_id", "provider"]
    revoked = wait_for(lambda: len(events.read()) >= 2 and events.read(), "two revocations")
    assert sorted(e["data"]["agency"] for e in revoked) == [MKP, RFS]
    events.close()
