"""After the purchase, in a real container on PostgreSQL and RabbitMQ: orders'
subscription events (frozen, renewed, released, upgrading) reach the reference seller
app as real signed calls, in order and once, and a renewed license's key carries the
new expiry. (test_instance_actions.py covers the rules on PostgreSQL in milliseconds.)

The fixtures are test_service.py's, imported (hence F811 on their parameters)."""

# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import requests
import sqlalchemy as sa

from mercato.tables import INBOX
from mercato_testing.interface import publish_event, wait_for
from provisioning import licenses
from provisioning.tests.test_service import (  # noqa: F401  (fixtures)
    BUYER,
    OTHER,
    SELLER,
    SUCCEEDED,
    announced,
    as_caller,
    config,
    events,
    of_type,
    paid_order,
    publish_paid,
    seller,
    settings,
    start_provisioning,
)

pytestmark = pytest.mark.interface

UPGRADED = "provisioning.instance.upgraded"
UPGRADE_FAILED = "provisioning.instance.upgrade_failed"
RENEWED_TO = dt.datetime(2027, 2, 14, 23, 59, 59, tzinfo=dt.UTC)


@pytest.fixture
def config(make_service_config):  # retries in a fraction of a second
    return make_service_config(
        "provisioning",
        **settings(
            INSTANCE_ACTION_SWEEP_SECONDS=0.2,
            INSTANCE_ACTION_RETRY_SECONDS=0.2,
            INSTANCE_ACTION_RETRY_MAX_SECONDS=0.5,
        ),
    )


def facts(order: dict) -> dict:
    line = order["subscriptions"][0]
    return {
        "subscription_id": line["subscription_id"],
        "order_id": order["order_id"],
        "account_id": order["account_id"],
        "seller_account_id": line["seller_account_id"],
        "product_id": line["product_id"],
        "product_name": line["product_name"],
        "specification_name": line["specification_name"],
        "delivery_method": line["delivery_method"],
        "billing_mode": line["billing_mode"],
    }


def publish(config, event_type: str, data: dict, *, times: int = 1) -> None:
    publish_event(
        config["AMQP_URI"], event_type, data, subject=data["subscription_id"], times=times
    )


def frozen(order: dict) -> dict:
    return {
        **facts(order),
        "expires_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        "frozen_at": dt.datetime(2027, 1, 16, tzinfo=dt.UTC),
        "release_at": dt.datetime(2027, 1, 31, tzinfo=dt.UTC),
    }


def renewed(order: dict, previous_status: str = "frozen") -> dict:
    return {
        **facts(order),
        "renewal_order_id": f"ord_{uuid.uuid4().hex}",
        "previous_status": previous_status,
        "previous_expires_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        "expires_at": RENEWED_TO,
        "period": {"unit": "month", "count": 1},
        "amount": {"amount": 5000, "currency": "USD"},
        "automatic": False,
        "renewed_at": dt.datetime(2027, 1, 20, tzinfo=dt.UTC),
    }


def upgrading(order: dict) -> dict:
    return {
        **facts(order),
        "upgrade_order_id": f"ord_{uuid.uuid4().hex}",
        "specification_id": "spc_pro",
        "specification_name": "Pro",
        "quantity": 25,
        "previous_specification_id": "spc_std",
        "previous_quantity": 10,
        "expires_at": RENEWED_TO,
    }


def released(order: dict) -> dict:
    return {
        **facts(order),
        "reason": "expired",
        "released_at": dt.datetime(2027, 3, 1, tzinfo=dt.UTC),
    }


def action_rows(config, subscription_id) -> list[dict]:
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [
                dict(row)
                for row in connection.execute(
                    sa.text(
                        "SELECT kind, status, attempts, last_error FROM instance_actions "
                        "WHERE subscription_id = :s ORDER BY seq"
                    ),
                    {"s": subscription_id},
                ).mappings()
            ]
    finally:
        engine.dispose()


def settled(config, subscription_id, count: int) -> list[dict]:
    """The subscription's ``count`` actions, once none is pending."""
    return wait_for(
        lambda: (
            (rows := action_rows(config, subscription_id))
            and len(rows) == count
            and all(row["status"] != "pending" for row in rows)
            and rows
        ),
        what=f"{count} actions done",
    )


def calls_to(app, instance_id: str) -> list[tuple[str, str]]:
    """The activities the seller answered for the instance, in order, as its log says."""
    return [
        (record["activity"], record["result_code"])
        for record in app.records()
        if record.get("event") == "request" and record.get("instance_id") == instance_id
        and record["activity"] not in ("newInstance", "queryInstance")
    ]  # fmt: skip


def page(app, instance_id: str, admin: bool = False) -> requests.Response:
    suffix = "admin/" if admin else ""
    return requests.get(f"{app.base_url}/tenants/{instance_id}/{suffix}", timeout=5)


def test_a_saas_tenant_is_frozen_renewed_upgraded_and_released_at_its_seller(
    start_provisioning, seller, config, events
):
    start_provisioning()
    app = seller()
    order = paid_order()
    subscription_id = publish_paid(config, order)
    delivered = announced(events, SUCCEEDED, subscription_id, "delivery")
    instance_id = delivered[0]["data"]["application"]["instance_id"]

    publish(config, "orders.subscription.frozen", frozen(order), times=2)  # redelivered
    settled(config, subscription_id, 1)
    assert "frozen" in page(app, instance_id).text
    assert page(app, instance_id, admin=True).status_code == 403  # no sign-in while frozen

    publish(config, "orders.subscription.renewed", renewed(order))
    rows = settled(config, subscription_id, 3)
    assert [row["kind"] for row in rows] == ["freeze", "unfreeze", "refresh"]
    front = page(app, instance_id)
    assert "frozen" not in front.text and "expires 2027-02-14T23:59:59Z" in front.text
    assert page(app, instance_id, admin=True).status_code == 200

    upgrade = upgrading(order)
    publish(config, "orders.subscription.upgrading", upgrade)
    (upgraded,) = announced(events, UPGRADED, subscription_id, "instance.upgraded")
    assert upgraded["data"] == {
        "subscription_id": subscription_id,
        "upgrade_order_id": upgrade["upgrade_order_id"],
        "specification_id": "spc_pro",
        "quantity": 25,
        "upgraded_at": upgraded["data"]["upgraded_at"],
    }
    assert "Specification spc_pro, quantity 25" in page(app, instance_id).text

    publish(config, "orders.subscription.released", released(order))
    settled(config, subscription_id, 5)
    assert page(app, instance_id).status_code == 404
    assert calls_to(app, instance_id) == [
        ("updateInstanceStatus", "000000"),
        ("updateInstanceStatus", "000000"),
        ("refreshInstance", "000000"),
        ("upgradeInstance", "000000"),
        ("releaseInstance", "000000"),
    ]
    assert not of_type(events(), UPGRADE_FAILED, subscription_id)


def test_a_seller_in_error_is_asked_again_until_it_answers_and_a_refused_upgrade_fails(
    start_provisioning, seller, config, events
):
    start_provisioning()
    app = seller()
    order = paid_order()
    subscription_id = publish_paid(config, order)
    delivered = announced(events, SUCCEEDED, subscription_id, "delivery")
    instance_id = delivered[0]["data"]["application"]["instance_id"]

    app.set_fault("error")  # authenticated calls answer 000005
    publish(config, "orders.subscription.frozen", frozen(order))
    publish(config, "orders.subscription.renewed", renewed(order))
    wait_for(
        lambda: (rows := action_rows(config, subscription_id)) and rows[0]["attempts"] >= 3,
        what="the freeze asked three times",
    )
    first, unfreeze, refresh = action_rows(config, subscription_id)
    assert first["status"] == "pending" and "000005" in first["last_error"]
    # the later actions wait for the freeze, untried
    assert (unfreeze["attempts"], refresh["attempts"]) == (0, 0)
    app.set_fault("none")
    settled(config, subscription_id, 3)
    kinds = [activity for activity, code in calls_to(app, instance_id) if code == "000000"]
    assert kinds == ["updateInstanceStatus", "updateInstanceStatus", "refreshInstance"]

    # the tenant is gone at the seller: the upgrade is refused for good
    with app.client() as client:
        client.call("releaseInstance", {"instanceId": instance_id})
    publish(config, "orders.subscription.upgrading", upgrading(order))
    (failed,) = announced(events, UPGRADE_FAILED, subscription_id, "instance.upgrade_failed")
    assert "000003" in failed["data"]["reason"]
    assert not of_type(events(), UPGRADED, subscription_id)
    assert action_rows(config, subscription_id)[-1]["status"] == "failed"


def test_a_renewed_license_shows_a_key_carrying_the_new_expiry(start_provisioning, config, events):
    start_provisioning()
    order = paid_order("license")
    subscription_id = publish_paid(config, order)
    announced(events, SUCCEEDED, subscription_id, "license delivery")

    publish(config, "orders.subscription.renewed", renewed(order, previous_status="enabled"))
    settled(config, subscription_id, 1)

    with as_caller(config, BUYER) as service:
        shown = service.get_application(subscription_id)
        published = service.license_public_key(SELLER["account_id"])
    claims = licenses.verify(shown["license_key"], licenses._unb64(published["public_key"]))
    assert claims["expires_at"] == RENEWED_TO.isoformat()
    assert claims["subscription_id"] == subscription_id


def test_a_subscription_provisioning_never_delivered_gets_nothing(
    start_provisioning, config, events
):
    start_provisioning()
    order = paid_order()  # never announced paid here
    publish(config, "orders.subscription.frozen", frozen(order))
    publish(config, "orders.subscription.released", released(order))
    wait_for(lambda: handled(config) == 2, what="both events handled")
    assert action_rows(config, order["subscriptions"][0]["subscription_id"]) == []


def handled(config) -> int:
    """Events the instance actions' handlers took (their inbox rows)."""
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text(f"SELECT count(*) FROM {INBOX} WHERE handler LIKE :h"),
                {"h": "provisioning.on_subscription_%"},
            ).scalar_one()
    finally:
        engine.dispose()
