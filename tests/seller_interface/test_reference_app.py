"""The reference seller app as a real process, driven by Mercato's SellerClient."""

import dataclasses
import datetime as dt
import os
import sqlite3
import stat
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from seller_interface import SellerBadSignature, SellerClient, new_nonce, rfc3339

READY_WITHIN = 5.0


def order_line(**overrides):
    order_id = f"o-{uuid.uuid4().hex[:10]}"
    fields = {
        "businessId": uuid.uuid4().hex,
        "orderId": order_id,
        "orderLineId": f"{order_id}-1",
        "productId": "p-1",
        "specificationId": "basic",
        "specificationName": "Basic",
        "customerId": "acc-42",
        "customerName": "Acme Corp",
        "chargingMode": "yearly_monthly",
        "periodUnit": "month",
        "periodCount": 1,
        "quantity": 1,
        "expireTime": rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(days=30)),
        "testFlag": "1",
    }
    fields.update(overrides)
    return fields


def wait_ready(client: SellerClient, instance_id: str) -> dict:
    deadline = time.monotonic() + READY_WITHIN
    while True:
        answer = client.call("queryInstance", {"instanceId": instance_id})
        if answer.result_code != "000004" or time.monotonic() > deadline:
            assert answer.result_code == "000000", answer
            return answer.data["appInfo"]
        time.sleep(0.05)


def create(client: SellerClient, **overrides) -> str:
    answer = client.call("newInstance", order_line(**overrides))
    assert answer.result_code == "000000", answer
    return answer.data["instanceId"]


def test_new_instance_is_processing_then_ready_with_app_info(seller, client):
    instance_id = create(client)

    first = client.call("queryInstance", {"instanceId": instance_id})
    assert first.result_code == "000004"
    app_info = wait_ready(client, instance_id)

    assert app_info["frontEndUrl"] == f"{seller.base_url}/tenants/{instance_id}/"
    assert app_info["adminUrl"] == f"{seller.base_url}/tenants/{instance_id}/admin/"
    assert app_info["userName"] == "acme_corp_admin"
    assert len(app_info["password"]) >= 12
    again = wait_ready(client, instance_id)
    assert again["password"] == app_info["password"]  # generated once


def test_buyer_opens_the_front_end_url(client):
    instance_id = create(client, customerName="Globex <b>")
    app_info = wait_ready(client, instance_id)

    page = requests.get(app_info["frontEndUrl"], timeout=5)
    admin = requests.get(app_info["adminUrl"], timeout=5)

    assert page.status_code == 200 and "Welcome to Globex &lt;b&gt;" in page.text
    assert admin.status_code == 200 and "Administration of Globex" in admin.text


def test_healthz_and_unknown_paths(seller):
    assert requests.get(f"{seller.base_url}/healthz", timeout=5).json() == {"status": "ok"}
    assert (
        requests.get(f"{seller.base_url}/tenants/{uuid.uuid4().hex}/", timeout=5).status_code == 404
    )
    assert requests.get(f"{seller.base_url}/nope", timeout=5).status_code == 404


def test_lifecycle_refresh_freeze_upgrade_release(seller, client):
    instance_id = create(client)
    wait_ready(client, instance_id)
    new_expiry = "2030-01-01T00:00:00Z"

    calls = [
        (
            "refreshInstance",
            {
                "instanceId": instance_id,
                "orderId": "r-1",
                "orderLineId": "r-1-1",
                "expireTime": new_expiry,
            },
        ),
        ("updateInstanceStatus", {"instanceId": instance_id, "status": "FREEZE"}),
        (
            "upgradeInstance",
            {
                "instanceId": instance_id,
                "orderId": "u-1",
                "orderLineId": "u-1-1",
                "specificationId": "pro",
                "quantity": 5,
            },
        ),
    ]
    for activity, fields in calls:
        assert client.call(activity, fields).result_code == "000000", activity

    page = requests.get(f"{seller.base_url}/tenants/{instance_id}/", timeout=5).text
    assert (
        "frozen" in page and "Specification pro, quantity 5, expires 2030-01-01T00:00:00Z" in page
    )

    unfreeze = client.call(
        "updateInstanceStatus", {"instanceId": instance_id, "status": "UNFREEZE"}
    )
    assert unfreeze.result_code == "000000"
    assert "frozen" not in requests.get(f"{seller.base_url}/tenants/{instance_id}/", timeout=5).text

    assert (
        client.call("releaseInstance", {"instanceId": instance_id, "orderId": "x"}).result_code
        == "000000"
    )
    assert client.call("queryInstance", {"instanceId": instance_id}).result_code == "000003"
    assert client.call("releaseInstance", {"instanceId": instance_id}).result_code == "000000"
    frozen_after = client.call(
        "updateInstanceStatus", {"instanceId": instance_id, "status": "FREEZE"}
    )
    assert frozen_after.result_code == "000003"
    assert requests.get(f"{seller.base_url}/tenants/{instance_id}/", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("activity", "fields", "named"),
    [
        ("queryInstance", {}, "instanceId"),
        ("queryInstance", {"instanceId": 7}, "instanceId"),
        (
            "refreshInstance",
            {"instanceId": "i", "orderId": "o", "orderLineId": "l", "expireTime": "tomorrow"},
            "expireTime",
        ),
        ("updateInstanceStatus", {"instanceId": "i", "status": "PAUSE"}, "status"),
        (
            "upgradeInstance",
            {
                "instanceId": "i",
                "orderId": "o",
                "orderLineId": "l",
                "specificationId": "s",
                "quantity": 0,
            },
            "quantity",
        ),
        ("releaseInstance", {}, "instanceId"),
        ("launchRocket", {}, "activity"),
    ],
)
def test_bad_parameters_answer_000002_naming_the_field(client, activity, fields, named):
    answer = client.call(activity, fields)

    assert answer.result_code == "000002"
    assert named in answer.result_msg


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"orderId": None}, "orderId"),
        ({"quantity": "1"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"chargingMode": "monthly"}, "chargingMode"),
        ({"periodUnit": None}, "periodUnit"),
        ({"expireTime": "2026-01-01T00:00:00"}, "expireTime"),
        ({"testFlag": "yes"}, "testFlag"),
    ],
)
def test_new_instance_validates_its_fields(client, overrides, named):
    fields = {k: v for k, v in order_line(**overrides).items() if v is not None}

    answer = client.call("newInstance", fields)

    assert (answer.result_code, named in answer.result_msg) == ("000002", True), answer


def test_pay_per_use_needs_no_period(client):
    create(client, chargingMode="pay_per_use", periodUnit=None, periodCount=None, expireTime=None)


def test_new_instance_twice_for_the_same_order_line_gives_one_instance(client):
    fields = order_line()
    first = client.call("newInstance", fields)
    second = client.call("newInstance", {**fields, "businessId": uuid.uuid4().hex, "quantity": 3})

    assert first.data["instanceId"] == second.data["instanceId"]
    other_line = client.call("newInstance", {**fields, "orderLineId": fields["orderLineId"] + "b"})
    assert other_line.data["instanceId"] != first.data["instanceId"]


def test_ten_concurrent_new_instances_for_one_order_line_create_one_tenant(seller):
    fields = order_line()
    db_path = seller.args[[a.startswith("--db=") for a in seller.args].index(True)][5:]

    def call(_):
        with seller.client() as client:
            return client.call("newInstance", {**fields, "businessId": uuid.uuid4().hex})

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(call, range(10)))

    assert {a.result_code for a in answers} == {"000000"}
    assert len({a.data["instanceId"] for a in answers}) == 1
    with sqlite3.connect(db_path) as conn:
        (rows,) = conn.execute(
            "SELECT count(*) FROM instances WHERE order_id = ?", (fields["orderId"],)
        ).fetchone()
    assert rows == 1


def test_replayed_request_is_refused(client):
    request = client.prepare("queryInstance", {"instanceId": "unknown"})

    assert client.send(request).result_code == "000003"
    assert client.send(request).result_code == "000001"


def test_stale_and_future_timestamps_are_refused(client):
    now_ms = int(time.time() * 1000)
    for timestamp in (now_ms - 61_000, now_ms + 61_000, now_ms - 5 * 60_000):
        request = client.prepare("queryInstance", {"instanceId": "x"}, timestamp_ms=timestamp)
        assert client.send(request).result_code == "000001"
    fresh = client.prepare("queryInstance", {"instanceId": "x"}, timestamp_ms=now_ms - 30_000)
    assert client.send(fresh).result_code == "000003"


def test_wrong_signature_and_malformed_nonce_are_refused_but_signed(client):
    wrong = client.prepare("newInstance", order_line(), signing_secret="guess")
    short_nonce = client.prepare("queryInstance", {"instanceId": "x"}, nonce=new_nonce()[:32])

    assert client.send(wrong).result_code == "000001"  # Body-Sign verified by send()
    assert client.send(short_nonce).result_code == "000001"


def test_unknown_access_key_gets_an_unsigned_refusal(seller):
    with SellerClient(seller.url, "ak_" + "0" * 32, seller.secret) as stranger:
        with pytest.raises(SellerBadSignature, match="no Body-Sign"):
            stranger.call("queryInstance", {"instanceId": "x"})


def test_logs_are_json_lines_without_passwords_or_secret(seller, client):
    instance_id = create(client)
    password = wait_ready(client, instance_id)["password"]

    log = seller.log()
    records = seller.records()
    assert password not in log and seller.secret not in log
    assert any(r["event"] == "tenant.created" and r["instance_id"] == instance_id for r in records)
    assert any(r["event"] == "request" and r.get("refused") is None for r in records)
    assert all(line.startswith("{") for line in log.splitlines())


def test_restart_keeps_instances_passwords_and_seen_nonces(start_seller, tmp_path):
    db = tmp_path / "seller.sqlite3"
    first = start_seller(db=db, provision_delay=0.5)
    with first.client() as client:
        instance_id = create(client)
        app_info = wait_ready(client, instance_id)
        pending = create(client)  # still being created when the app stops
        replay = client.prepare("queryInstance", {"instanceId": instance_id})
        assert client.send(replay).result_code == "000000"
    assert first.stop() == 0
    assert first.records()[-1]["event"] == "stopped"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600

    second = start_seller(
        db=db, provision_delay=0.1, access_key=first.access_key, secret=first.secret
    )
    with second.client() as client:
        again = wait_ready(client, instance_id)
        assert again["password"] == app_info["password"]
        assert again["userName"] == app_info["userName"]
        assert again["frontEndUrl"] == f"{second.base_url}/tenants/{instance_id}/"
        assert wait_ready(client, pending)["userName"]
        replay = dataclasses.replace(replay, url=replay.url.replace(first.url, second.url))
        assert client.send(replay).result_code == "000001"
        fields = order_line()
        assert create(client, **fields) == create(client, **{**fields, "businessId": "b2"})


def test_sigint_stops_cleanly(start_seller):
    seller = start_seller()
    seller.process.send_signal(2)

    assert seller.process.wait(timeout=10) == 0
    assert [r["event"] for r in seller.records()][-2:] == ["stopping", "stopped"]


def test_after_the_purchase_each_activity_changes_the_tenant_and_answers_a_repeat_alike(
    seller, client
):
    """Freeze refuses sign-in (the admin page) and says so on the front end, refresh
    moves the expiry, upgrade changes the specification and quantity, release deletes
    the tenant; each answers 000000 again when Mercato repeats it."""
    instance_id = create(client, quantity=3)
    app_info = wait_ready(client, instance_id)
    front, admin = app_info["frontEndUrl"], app_info["adminUrl"]
    assert requests.get(admin, timeout=5).status_code == 200

    for _ in range(2):
        frozen = client.call(
            "updateInstanceStatus", {"instanceId": instance_id, "status": "FREEZE"}
        )
        assert frozen.result_code == "000000"
    refused = requests.get(admin, timeout=5)
    assert refused.status_code == 403 and "frozen" in refused.text
    assert "This tenant is frozen." in requests.get(front, timeout=5).text

    renewal = {
        "instanceId": instance_id,
        "orderId": "r-2",
        "orderLineId": "r-2-1",
        "expireTime": "2031-06-30T15:59:59Z",
    }
    for _ in range(2):
        assert client.call("refreshInstance", renewal).result_code == "000000"
        thawed = client.call(
            "updateInstanceStatus", {"instanceId": instance_id, "status": "UNFREEZE"}
        )
        assert thawed.result_code == "000000"
    assert requests.get(admin, timeout=5).status_code == 200
    page = requests.get(front, timeout=5).text
    assert "expires 2031-06-30T15:59:59Z" in page and "frozen" not in page

    upgrade = {
        "instanceId": instance_id,
        "orderId": "u-2",
        "orderLineId": "u-2-1",
        "specificationId": "enterprise",
        "quantity": 40,
    }
    for _ in range(2):
        assert client.call("upgradeInstance", upgrade).result_code == "000000"
    assert "Specification enterprise, quantity 40" in requests.get(front, timeout=5).text

    for _ in range(2):
        assert client.call("releaseInstance", {"instanceId": instance_id}).result_code == "000000"
    assert requests.get(front, timeout=5).status_code == 404
    assert requests.get(admin, timeout=5).status_code == 404
    for activity, fields in (
        ("refreshInstance", renewal),
        ("upgradeInstance", upgrade),
        ("updateInstanceStatus", {"instanceId": instance_id, "status": "UNFREEZE"}),
    ):
        assert client.call(activity, fields).result_code == "000003", activity


def test_a_released_tenant_keeps_no_password(seller, client):
    instance_id = create(client)
    wait_ready(client, instance_id)
    assert client.call("releaseInstance", {"instanceId": instance_id}).result_code == "000000"
    database = seller.args[[a.startswith("--db=") for a in seller.args].index(True)][5:]
    with sqlite3.connect(database) as connection:
        (password,) = connection.execute(
            "SELECT password FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
    assert password is None
