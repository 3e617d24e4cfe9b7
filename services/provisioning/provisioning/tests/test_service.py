"""provisioning in a real container on PostgreSQL and RabbitMQ, delivering to the
reference seller application running as a real HTTP server; catalog is replaced by a
small nameko service that answers ``delivery_settings`` like it."""

import datetime as dt
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.errors import NotFound, RateLimited
from mercato.periods import subscription_expiry
from mercato.transport import rpc
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue, caller, publish_event, wait_for
from mercato_testing.seller import reference_seller
from provisioning import licenses
from provisioning.models import metadata
from provisioning.service import ProvisioningService

pytestmark = pytest.mark.interface

BUYER = caller("acc_buyer", "buyer")
OTHER = caller("acc_other", "buyer")
SELLER = caller("acc_seller", "seller")


class FakeCatalog:
    name = "catalog"
    endpoint = "http://127.0.0.1:9/saas"

    @rpc
    def delivery_settings(self, product_id):
        if product_id == "prd_gone":
            raise NotFound("product not found")
        return {
            "product_id": product_id,
            "seller_account_id": SELLER["account_id"],
            "delivery_method": "saas",
            "service_supervision": False,
            "saas_endpoint_url": FakeCatalog.endpoint,
            "product_guide_url": None,
            "seller": {"company_name": "Seller Co", "email": "s@example.com", "mobile": "1"},
        }


def settings(**overrides):
    return {
        "ALLOW_PRIVATE_SELLER_ENDPOINTS": "true",  # the reference app runs on 127.0.0.1
        "DELIVERY_SWEEP_SECONDS": 0.2,
        "DELIVERY_LEASE_SECONDS": 5,  # a killed provisioning's hold runs out quickly
        "DELIVERY_RETRY_MAX_SECONDS": 0.5,
        "SELLER_TIMEOUT_SECONDS": 1,
        **overrides,
    }


@pytest.fixture
def config(make_service_config):
    return make_service_config("provisioning", **settings())


@pytest.fixture
def events(config):
    """Everything provisioning publishes, in order (a queue bound before it starts);
    ``events(count)`` waits for at least ``count`` of them."""
    queue = EventQueue(config["AMQP_URI"], "provisioning")

    def drain(count: int = 0) -> list[dict]:
        if count:
            wait_for(lambda: len(queue.read()) >= count, f"{count} events")
        return queue.read()

    yield drain
    queue.close()


@pytest.fixture
def start_provisioning(container_factory, config):
    def start(**overrides):
        container_factory(FakeCatalog, config).start()
        container = container_factory(ProvisioningService, {**config, **overrides})
        container.start()
        return container

    return start


@pytest.fixture
def seller(config, tmp_path):
    """The reference seller app, with credentials the seller issued through provisioning
    (started once provisioning runs)."""
    holder = {}

    def start(fault="none", provision_delay=0.2):
        if "credentials" not in holder:
            with as_caller(config, SELLER) as service:
                holder["credentials"] = service.issue_interface_credentials()
        credentials = holder["credentials"]
        app = reference_seller(
            tmp_path,
            credentials["access_key"],
            credentials["secret"],
            fault=fault,
            provision_delay=provision_delay,
        ).start()
        FakeCatalog.endpoint = app.url
        holder.setdefault("apps", []).append(app)
        return app

    yield start
    for app in holder.get("apps", []):
        app.stop()


def as_caller(config, caller):
    return ServiceRpcProxy(
        "provisioning", config, timeout=20, context_data=signed_context(dict(caller))
    )


def paid_order(method: str = "saas", *, supervision: bool | None = None) -> dict:
    """An orders.order.paid of one subscription; supervised as the catalog has it
    (licenses and professional services always) unless ``supervision`` says."""
    if supervision is None:
        supervision = method in ("license", "professional_service")
    order_id = f"ord_{uuid.uuid4().hex}"
    return {
        "order_id": order_id,
        "account_id": BUYER["account_id"],
        "payer_account_id": BUYER["account_id"],
        "enterprise_project_id": "default",
        "payment_id": f"pay_{uuid.uuid4().hex}",
        "payment_method": "balance",
        "amount": {"amount": 5000, "currency": "USD"},
        "subscriptions": [
            {
                "subscription_id": f"sub_{uuid.uuid4().hex}",
                "order_line_id": f"oln_{uuid.uuid4().hex}",
                "product_id": "prd_app",
                "product_name": "Team Chat",
                "seller_account_id": SELLER["account_id"],
                "specification_id": "spc_std",
                "specification_name": "Standard",
                "delivery_method": method,
                "service_supervision": supervision,
                "billing_mode": "yearly_monthly",
                "period": {"unit": "month", "count": 1},
                "quantity": 10,
                "expires_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            }
        ],
    }


def publish_paid(config, data, *, times=1) -> str:
    """Announce the order paid, as orders does; answers its first subscription's id."""
    publish_event(
        config["AMQP_URI"], "orders.order.paid", data, subject=data["order_id"], times=times
    )
    return data["subscriptions"][0]["subscription_id"]


def delivery_row(config, subscription_id):
    engine = sa.create_engine(config["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return (
                connection.execute(
                    sa.text("SELECT * FROM deliveries WHERE subscription_id = :s"),
                    {"s": subscription_id},
                )
                .mappings()
                .first()
            )
    finally:
        engine.dispose()


def of_type(received, event_type, subscription_id):
    return [e for e in received if e["type"] == event_type and e["subject"] == subscription_id]


SUCCEEDED = "provisioning.delivery.succeeded"
FAILED = "provisioning.delivery.failed"


def announced(events, event_type, subscription_id, what, timeout=20.0) -> list[dict]:
    """The subscription's ``event_type`` events, once provisioning has published one."""
    return wait_for(lambda: of_type(events(), event_type, subscription_id), what, timeout)


def delivered_once(events, subscription_id, what, timeout=20.0) -> list[dict]:
    """The subscription's delivery.succeeded, and no second one a moment later."""
    delivered = announced(events, SUCCEEDED, subscription_id, what, timeout)
    time.sleep(1)  # anything more would be a second delivery
    assert len(of_type(events(), SUCCEEDED, subscription_id)) == 1
    return delivered


def instances_of(app) -> set[str]:
    """The instance ids the seller handed out for newInstance (one tenant each), as its
    log tells them."""
    return {
        record["instance_id"]
        for record in app.records()
        if record.get("event") == "request"
        and record.get("activity") == "newInstance"
        and record.get("result_code") == "000000"
    }


# -- SaaS --------------------------------------------------------------------------------


def test_saas_is_delivered_once_and_its_password_is_sealed_masked_and_revealed(
    start_provisioning, seller, config, events
):
    start_provisioning()
    app = seller()
    order = paid_order()
    # a redelivered event starts nothing twice
    subscription_id = publish_paid(config, order, times=2)

    received = events(count=1)
    delivered = delivered_once(events, subscription_id, "delivery.succeeded")
    application = delivered[0]["data"]["application"]
    assert application["has_password"] is True
    assert application["frontend_url"].startswith(app.base_url)
    assert "password" not in json.dumps(delivered[0]["data"]).replace("has_password", "")
    assert received  # the drain saw traffic

    with as_caller(config, BUYER) as service:
        shown = service.get_application(subscription_id)
        assert shown["password"] == "******"
        assert shown["username"] == application["username"]
        revealed = service.reveal_credentials(subscription_id)
    assert instances_of(app) == {shown["instance_id"]}
    row = delivery_row(config, subscription_id)
    assert row["password_sealed"] is not None
    assert revealed["password"].encode() not in bytes(row["password_sealed"])
    assert revealed["username"] == shown["username"] and revealed["password"]

    with as_caller(config, OTHER) as service:
        with pytest.raises(NotFound):
            service.get_application(subscription_id)
        with pytest.raises(NotFound):
            service.reveal_credentials(subscription_id)

    engine = sa.create_engine(config["DATABASE_URL"])
    with engine.connect() as connection:
        reveals = connection.execute(
            sa.text(
                "SELECT account_id, user_id FROM credential_reveals WHERE subscription_id = :s"
            ),
            {"s": subscription_id},
        ).all()
        # nothing in any table holds the password in the clear
        for table in metadata.sorted_tables:
            rows = [dict(r) for r in connection.execute(sa.select(table)).mappings()]
            assert revealed["password"] not in json.dumps(rows, default=str), table.name
    engine.dispose()
    assert reveals == [("acc_buyer", "usr_buyer")]


def test_reveals_are_rate_limited(start_provisioning, seller, config, events):
    start_provisioning()
    seller()
    order = paid_order()
    subscription_id = publish_paid(config, order)
    announced(events, SUCCEEDED, subscription_id, "delivery")
    with as_caller(config, BUYER) as service:
        for _ in range(5):
            service.reveal_credentials(subscription_id)
        with pytest.raises(RateLimited):
            service.reveal_credentials(subscription_id)


def test_a_seller_down_for_a_while_gets_the_delivery_once_when_back(
    start_provisioning, seller, config, events
):
    start_provisioning()
    with as_caller(config, SELLER) as service:
        service.issue_interface_credentials()  # credentials exist; the app is not running
    FakeCatalog.endpoint = "http://127.0.0.1:9/saas"  # nothing listens there yet
    order = paid_order()
    subscription_id = publish_paid(config, order)
    wait_for(
        lambda: (delivery_row(config, subscription_id) or {}).get("attempts", 0) >= 2,
        what="two failed attempts",
    )
    assert delivery_row(config, subscription_id)["status"] == "pending"
    app = seller()  # back: re-issues no credentials (the holder keeps the first pair)
    delivered_once(events, subscription_id, "delivery after the seller came back")
    assert len(instances_of(app)) == 1


def test_a_seller_that_never_answers_fails_the_delivery_once_when_the_window_passes(
    start_provisioning, seller, config, events
):
    start_provisioning(DELIVERY_WINDOW_SECONDS=4)
    seller(fault="hang")
    order = paid_order()
    subscription_id = publish_paid(config, order)
    failed = announced(events, FAILED, subscription_id, "delivery.failed", timeout=30)
    time.sleep(1.5)
    assert len(of_type(events(), FAILED, subscription_id)) == 1
    assert not of_type(events(), SUCCEEDED, subscription_id)
    assert "Team Chat" in failed[0]["data"]["reason"]
    row = delivery_row(config, subscription_id)
    assert row["status"] == "failed" and "no answer" in (row["last_error"] or "")


def test_an_instance_the_seller_never_finished_is_released_when_the_window_passes(
    start_provisioning, seller, config, events
):
    start_provisioning(DELIVERY_WINDOW_SECONDS=3)
    app = seller(provision_delay=600)  # newInstance answers; the tenant is never ready
    order = paid_order()
    subscription_id = publish_paid(config, order)
    announced(events, FAILED, subscription_id, "delivery.failed", timeout=30)
    row = wait_for(
        lambda: (r := delivery_row(config, subscription_id))["released_at"] and r,
        what="the release",
    )
    assert row["release_due_at"] is None
    (instance_id,) = instances_of(app)
    released = [
        r
        for r in app.records()
        if r.get("activity") == "releaseInstance" and r.get("instance_id") == instance_id
    ]
    assert [r["result_code"] for r in released] == ["000000"]


def test_a_bad_signature_is_refused_retried_and_reported_then_delivered_once_fixed(
    start_provisioning, seller, config, events
):
    start_provisioning()
    app = seller(fault="bad-signature")
    order = paid_order()
    subscription_id = publish_paid(config, order)
    wait_for(
        lambda: (delivery_row(config, subscription_id) or {}).get("attempts", 0) >= 2,
        what="refused answers",
    )
    row = delivery_row(config, subscription_id)
    assert row["status"] == "pending" and "Body-Sign does not verify" in row["last_error"]
    assert not of_type(events(), SUCCEEDED, subscription_id)
    app.set_fault("none")
    announced(events, SUCCEEDED, subscription_id, "delivery once the signature is right")
    # newInstance was answered (with a bad signature) and asked again: still one tenant
    assert len(instances_of(app)) == 1


def test_provisioning_killed_mid_delivery_delivers_exactly_once_after_restart(
    start_provisioning, seller, config, events
):
    container = start_provisioning()
    app = seller(provision_delay=3)  # the tenant takes a while: queryInstance says 000004
    order = paid_order()
    subscription_id = publish_paid(config, order)
    wait_for(
        lambda: (delivery_row(config, subscription_id) or {}).get("instance_id"),
        what="the instance id to be recorded",
    )
    container.kill()
    assert delivery_row(config, subscription_id)["status"] == "pending"
    start_provisioning()
    delivered_once(events, subscription_id, "delivery after the restart", timeout=30)
    assert len(instances_of(app)) == 1


def test_an_unexpected_failure_is_retried_and_still_ends_when_the_window_passes(
    start_provisioning, seller, config, events
):
    start_provisioning(DELIVERY_WINDOW_SECONDS=3)
    seller()
    order = paid_order()
    order["subscriptions"][0]["product_id"] = "prd_gone"  # catalog answers NotFound
    subscription_id = publish_paid(config, order)
    announced(events, FAILED, subscription_id, "delivery.failed", timeout=30)
    row = delivery_row(config, subscription_id)
    assert row["attempts"] >= 2 and "NotFound" in row["last_error"]


def test_a_private_endpoint_is_refused_outside_development(
    start_provisioning, seller, config, events
):
    start_provisioning(ALLOW_PRIVATE_SELLER_ENDPOINTS="false", DELIVERY_WINDOW_SECONDS=3)
    app = seller()  # listening on 127.0.0.1
    order = paid_order()
    subscription_id = publish_paid(config, order)
    announced(events, FAILED, subscription_id, "delivery.failed", timeout=30)
    assert "private network" in delivery_row(config, subscription_id)["last_error"]
    assert instances_of(app) == set()  # never called


# -- licenses ------------------------------------------------------------------------------


def test_a_license_key_is_delivered_and_verifies_with_the_sellers_published_key(
    start_provisioning, config, events
):
    start_provisioning()
    order = paid_order("license")
    subscription_id = order["subscriptions"][0]["subscription_id"]
    with as_caller(config, OTHER) as service:  # nobody creates a key for a seller
        with pytest.raises(NotFound):
            service.license_public_key(SELLER["account_id"])
    publish_paid(config, order)
    delivered = announced(events, SUCCEEDED, subscription_id, "license delivery")
    license_key = delivered[0]["data"]["application"]["license_key"]
    with as_caller(config, OTHER) as service:
        published = service.license_public_key(SELLER["account_id"])
    public = licenses._unb64(published["public_key"])
    claims = licenses.verify(license_key, public)
    assert claims["subscription_id"] == subscription_id
    assert claims["account_id"] == BUYER["account_id"]
    assert claims["quantity"] == 10
    assert claims["product_id"] == "prd_app"
    assert claims["key_id"] == published["key_id"]
    # one month from the first delivery attempt, the same in the key and the event
    data = delivered[0]["data"]
    assert claims["expires_at"] == data["expires_at"]
    starts = dt.datetime.fromisoformat(data["starts_at"])
    expires_at = subscription_expiry(starts, "yearly_monthly", "month", 1)
    assert dt.datetime.fromisoformat(data["expires_at"]) == expires_at


def test_images_and_professional_services_wait_for_their_own_flows(
    start_provisioning, config, events
):
    start_provisioning()
    order = paid_order("image")
    subscription_id = publish_paid(config, order)
    row = wait_for(lambda: delivery_row(config, subscription_id), what="the delivery row")
    time.sleep(0.5)
    assert row["status"] == "waiting"
    assert not of_type(events(), SUCCEEDED, subscription_id)


# -- key rotation --------------------------------------------------------------------------


def test_resealing_moves_every_secret_to_the_new_key_so_the_old_one_can_go(
    start_provisioning, seller, config, events
):
    from mercato.standalone import standalone_unit_of_work
    from provisioning.cli import census, reseal
    from provisioning.keyring import Keyring, generate_key_spec

    container = start_provisioning()
    seller()
    subscription_id, license_id = (
        publish_paid(config, order) for order in (paid_order(), paid_order("license"))
    )
    for delivered in (subscription_id, license_id):
        announced(events, SUCCEEDED, delivered, "deliveries")
    with as_caller(config, BUYER) as service:
        before = service.reveal_credentials(subscription_id)
    container.kill()

    new = generate_key_spec("new")
    keyring = Keyring.from_spec(f"{new},{config['CREDENTIAL_KEYS']}")
    with standalone_unit_of_work(
        config["DATABASE_URL"], metadata, service_name="provisioning", command="test"
    ) as uow:
        assert reseal(uow, keyring) == 3  # a password, an interface secret, a signing key
        assert reseal(uow, keyring) == 0  # nothing left to do
        assert census(uow) == {
            "delivered passwords": {"new": 1},
            "seller interface secrets": {"new": 1},
            "license signing keys": {"new": 1},
            "deployment passwords": {},
        }

    start_provisioning(CREDENTIAL_KEYS=new)  # the old key is gone
    with as_caller(config, BUYER) as service:
        assert service.reveal_credentials(subscription_id) == before
    another = publish_paid(config, paid_order("license"))
    announced(events, SUCCEEDED, another, "a license signed with the resealed key")
