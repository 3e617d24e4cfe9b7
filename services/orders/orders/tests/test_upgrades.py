"""Upgrades of SaaS subscriptions, in a real orders container on PostgreSQL and
RabbitMQ: its neighbours (catalog, iam-agency, billing) are small nameko services that
answer like them, and provisioning's answers are published as its events."""

import datetime as dt
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from mercato.clock import ManualClock
from mercato.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from mercato.transport import rpc
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue, caller, publish_event, wait_for
from orders.service import OrdersService
from orders.tests import fakes

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
# what the tests' purchase runs for: 2 months, delivered at START
EXPIRES = dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC)
# per month and unit, by specification
PRICES = {"spc_std": 2500, "spc_pro": 4000, "spc_lite": 1000}
NAMES = {"spc_std": "Standard", "spc_pro": "Professional", "spc_lite": "Lite"}
DELIVERY = {"prd_known": "saas", "prd_license": "license"}

BUYER = caller("acc_buyer", "buyer")
CUSTOMER = caller("acc_customer", "buyer", reseller_account_id="acc_reseller")
OTHER = caller("acc_other", "buyer")
ORDER = {**fakes.ORDER_REQUEST, "quantity": 3}  # spc_std x 3 for 2 months


class FakeCatalog:
    name = "catalog"

    @rpc
    def quote(self, payload):
        quote = fakes.quote_for({**payload, "product_id": "prd_known"})
        specification = payload["specification_id"]
        if specification not in PRICES:
            raise NotFound("no such specification")
        months = quote["period"]["count"] * (12 if quote["period"]["unit"] == "year" else 1)
        amount = PRICES[specification] * months * quote["quantity"]
        return {
            **quote,
            "product_id": payload["product_id"],
            "delivery_method": DELIVERY[payload["product_id"]],
            "specification_name": NAMES[specification],
            "unit_price": {"amount": PRICES[specification], "currency": "USD"},
            "amount": {"amount": amount, "currency": "USD"},
            "breakdown": [],
        }


class FakeIam:
    name = "iam_agency"

    @rpc
    def get_enterprise_project(self, project_id):
        return fakes.enterprise_project(project_id)


class FakeBilling:
    """Charges each order once (any amount, 0 too)."""

    name = "billing"
    charges: dict = {}

    @rpc
    def pay_order(self, payload):
        return FakeBilling.charges.setdefault(
            payload["order_id"], fakes.payment_answer(payload, "succeeded")
        )

    @rpc
    def get_payment(self, order_id):
        if order_id not in FakeBilling.charges:
            raise NotFound("no payment")
        return FakeBilling.charges[order_id]


@pytest.fixture
def orders(container_factory, make_service_config):
    FakeBilling.charges = {}
    config = make_service_config("orders", SUBSCRIPTION_SWEEP_SECONDS=3600)
    for fake in (FakeCatalog, FakeIam, FakeBilling):
        container_factory(fake, config).start()
    container = container_factory(OrdersService, config)
    clock = ManualClock(START)
    replace_dependencies(container, clock=clock)
    container.start()
    events = EventQueue(config["AMQP_URI"], "orders", "orders.#")
    yield config, clock, events
    events.close()


def as_caller(config, who=BUYER):
    return ServiceRpcProxy("orders", config, timeout=20, context_data=signed_context(dict(who)))


def sql(config, statement, **params):
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            return connection.execute(sa.text(statement), params).mappings().all()
    finally:
        engine.dispose()


def enabled_subscription(config, product_id="prd_known", who=BUYER) -> dict:
    """A paid and delivered subscription of ``spc_std`` x 3, from START to EXPIRES."""
    with as_caller(config, who) as service:
        order = service.place_order({**ORDER, "product_id": product_id})
        if order["status"] == "unpaid":  # a reseller's customer's is paid at once
            service.pay_order(order["id"], {"payment_method": "balance"})
    [row] = sql(config, "SELECT id FROM subscriptions WHERE order_id = :o", o=order["id"])
    delivered = {
        "delivery_id": "dlv_1",
        "subscription_id": row["id"],
        "order_id": order["id"],
        "order_line_id": order["lines"][0]["id"],
        "account_id": BUYER["account_id"],
        "delivery_method": DELIVERY[product_id],
        "service_supervision": False,
        "application": {
            "instance_id": "inst_1",
            "username": "admin",
            "management_url": "https://app.example.com/admin/",
            "frontend_url": "https://app.example.com/",
            "license_key": None,
            "has_password": True,
        },
        "starts_at": START,
        "expires_at": EXPIRES,
        "delivered_at": START,
    }
    publish_event(
        config["AMQP_URI"], "provisioning.delivery.succeeded", delivered, subject=row["id"]
    )
    with as_caller(config, who) as service:
        return wait_for(
            lambda: (app := service.get_purchased_app(row["id"]))["status"] == "enabled" and app,
            "the subscription to be enabled",
            timeout=15,
        )


def prorated(price: int, now: dt.datetime, started=START, expires=EXPIRES) -> int:
    fraction = Decimal((expires - now) // dt.timedelta(microseconds=1)) / Decimal(
        (expires - started) // dt.timedelta(microseconds=1)
    )
    return int((price * fraction).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def events_of(events, event_type):
    time.sleep(0.5)
    return [event for event in events.read() if event["type"] == event_type]


def wait_for_order(config, order_id, status):
    with as_caller(config) as service:
        return wait_for(
            lambda: (order := service.get_order(order_id))["status"] == status and order,
            f"the order to be {status}",
            timeout=15,
        )


def upgraded_event(app, order, **overrides):
    return {
        "subscription_id": app["id"],
        "upgrade_order_id": order["id"],
        "specification_id": "spc_pro",
        "quantity": 3,
        "upgraded_at": START,
        **overrides,
    }


def test_an_upgrade_mid_period_costs_the_time_left_itemised_and_applies_once(orders):
    config, clock, events = orders
    app = enabled_subscription(config)
    clock.set(dt.datetime(2026, 12, 27, 9, 0, tzinfo=dt.UTC))  # about half way
    now = clock.now()
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        new_value = prorated(4000 * 2 * 3, now)
        unused = prorated(2500 * 2 * 3, now)
        assert quote["amount_due"] == {"amount": new_value - unused, "currency": "USD"}
        assert [
            (line["item"], line["quantity"], line["amount"]["amount"]) for line in quote["lines"]
        ] == [
            ("new_configuration", 3, new_value),
            ("unused_value", 3, -unused),
        ]
        assert quote["valid_until"] == (now + dt.timedelta(minutes=30)).isoformat()
        assert (quote["specification_id"], quote["quantity"]) == ("spc_pro", 3)
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        assert (order["type"], order["status"]) == ("upgrade", "unpaid")
        assert order["amount_due"] == quote["amount_due"]
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
        assert paid["status"] == "delivering"
        under_way = service.get_purchased_app(app["id"])
        assert under_way["upgrading"] is True
        assert under_way["specification_id"] == "spc_std"
        # no second upgrade while one is under way
        with pytest.raises(BusinessRuleViolation) as raised:
            service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 4})
        assert raised.value.code == "UPGRADE_NOT_SUPPORTED"
    [upgrading] = events_of(events, "orders.subscription.upgrading")
    assert upgrading["data"]["upgrade_order_id"] == order["id"]
    assert (upgrading["data"]["specification_id"], upgrading["data"]["quantity"]) == ("spc_pro", 3)
    assert upgrading["data"]["previous_specification_id"] == "spc_std"
    assert upgrading["data"]["expires_at"] == EXPIRES.isoformat()
    paid_events = [e for e in events.read() if e["type"] == "orders.order.paid"]
    assert order["id"] not in {event["subject"] for event in paid_events}

    publish_event(
        config["AMQP_URI"],
        "provisioning.instance.upgraded",
        upgraded_event(app, order),
        subject=app["id"],
        times=2,
    )
    wait_for_order(config, order["id"], "completed")
    with as_caller(config) as service:
        upgraded = service.get_purchased_app(app["id"])
    assert (upgraded["specification_id"], upgraded["specification_name"]) == (
        "spc_pro",
        "Professional",
    )
    assert upgraded["quantity"] == 3 and upgraded["upgrading"] is False
    assert upgraded["expires_at"] == EXPIRES.isoformat()  # the expiry does not move
    [done] = events_of(events, "orders.subscription.upgraded")
    assert done["data"]["previous_quantity"] == 3
    completions = events_of(events, "orders.order.completed")
    assert [event["subject"] for event in completions].count(order["id"]) == 1


def test_a_lower_or_equal_configuration_is_refused(orders):
    config, _clock, _events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        for asked in (
            {"specification_id": "spc_std", "quantity": 3},  # the same
            {"specification_id": "spc_std", "quantity": 2},  # less
            {"specification_id": "spc_pro", "quantity": 2},  # fewer, if dearer
            {"specification_id": "spc_lite", "quantity": 4},  # cheaper
        ):
            with pytest.raises(BusinessRuleViolation) as raised:
                service.quote_upgrade(app["id"], asked)
            assert raised.value.code == "DOWNGRADE_NOT_SUPPORTED", asked
        with pytest.raises(ValidationError) as invalid:
            service.quote_upgrade(app["id"], {"specification_id": "spc_pro"})
        assert "quantity" in invalid.value.fields
    with as_caller(config, OTHER) as service, pytest.raises(NotFound):
        service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
    assert sql(config, "SELECT count(*) AS n FROM upgrade_quotes")[0]["n"] == 0


def test_only_an_enabled_saas_subscription_is_upgraded(orders):
    config, _clock, _events = orders
    app = enabled_subscription(config, "prd_license")
    with as_caller(config) as service, pytest.raises(BusinessRuleViolation) as raised:
        service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
    assert raised.value.code == "UPGRADE_NOT_SUPPORTED"


def test_a_quote_makes_one_order_before_it_expires_with_the_terms_accepted(orders):
    config, clock, _events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_std", "quantity": 4})
        with pytest.raises(BusinessRuleViolation) as refused:
            service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": False})
        assert refused.value.code == "TERMS_NOT_ACCEPTED"
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        with pytest.raises(Conflict) as used:
            service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        assert used.value.code == "QUOTE_USED" and order["id"] in str(used.value)
        late = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        clock.advance(minutes=31)
        with pytest.raises(BusinessRuleViolation) as expired:
            service.place_upgrade(app["id"], {"quote_id": late["id"], "accept_terms": True})
        assert expired.value.code == "QUOTE_EXPIRED"
    with as_caller(config, OTHER) as service, pytest.raises(NotFound):
        service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})


def test_a_refused_upgrade_is_cancelled_and_refunded_in_full(orders):
    config, clock, events = orders
    app = enabled_subscription(config)
    clock.advance(days=10)
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 5})
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        service.pay_order(order["id"], {"payment_method": "balance"})
    refusal = {
        "subscription_id": app["id"],
        "upgrade_order_id": order["id"],
        "reason": "The seller's system refused the upgrade: 000002.",
        "failed_at": clock.now(),
    }
    publish_event(
        config["AMQP_URI"],
        "provisioning.instance.upgrade_failed",
        refusal,
        subject=app["id"],
        times=2,
    )
    cancelled = wait_for_order(config, order["id"], "cancelled")
    assert refusal["reason"] in cancelled["cancel_reason"]
    [event] = events_of(events, "orders.order.cancelled")
    assert event["data"]["refund"] == quote["amount_due"]
    assert event["data"]["payment_id"] == FakeBilling.charges[order["id"]]["id"]
    [failed] = events_of(events, "orders.subscription.upgrade_failed")
    assert failed["data"]["refund"] == quote["amount_due"]
    with as_caller(config) as service:
        kept = service.get_purchased_app(app["id"])
    assert (kept["specification_id"], kept["quantity"], kept["upgrading"]) == ("spc_std", 3, False)
    # a late success for the cancelled upgrade changes nothing
    publish_event(
        config["AMQP_URI"],
        "provisioning.instance.upgraded",
        upgraded_event(app, order, quantity=5),
        subject=app["id"],
    )
    time.sleep(1)
    with as_caller(config) as service:
        assert service.get_purchased_app(app["id"])["quantity"] == 3


def test_an_upgrade_worth_nothing_still_makes_an_order_paid_with_zero(orders):
    config, clock, events = orders
    app = enabled_subscription(config)
    clock.set(EXPIRES - dt.timedelta(seconds=1))
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        assert quote["amount_due"] == {"amount": 0, "currency": "USD"}
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
    assert paid["status"] == "delivering"
    assert FakeBilling.charges[order["id"]]["amount"] == {"amount": 0, "currency": "USD"}
    assert len(events_of(events, "orders.subscription.upgrading")) == 1


def test_a_resellers_customers_upgrade_is_paid_by_the_reseller_when_placed(orders):
    config, clock, events = orders
    app = enabled_subscription(config, who=CUSTOMER)
    clock.advance(days=20)
    with as_caller(config, CUSTOMER) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
    assert (order["status"], order["paid_by_reseller"]) == ("delivering", True)
    charge = FakeBilling.charges[order["id"]]
    assert (charge["payment_method"], charge["amount"]) == ("reseller", quote["amount_due"])
    assert len(events_of(events, "orders.subscription.upgrading")) == 1


def test_after_a_renewal_an_upgrade_prices_the_time_left_of_the_renewed_period(orders):
    config, clock, _events = orders
    app = enabled_subscription(config)
    year = {"unit": "year", "count": 1}
    with as_caller(config) as service:
        renewal = service.quote_renewal(app["id"], {"period": year})
        order = service.place_renewal(app["id"], {"quote_id": renewal["id"]})
        service.pay_order(order["id"], {"payment_method": "balance"})
        renewed = service.get_purchased_app(app["id"])
    expires = dt.datetime.fromisoformat(renewed["expires_at"])
    clock.set(EXPIRES + dt.timedelta(days=100))  # within the renewed year
    now = clock.now()
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
    new_value = prorated(4000 * 12 * 3, now, EXPIRES, expires)
    unused = prorated(2500 * 12 * 3, now, EXPIRES, expires)
    assert quote["amount_due"]["amount"] == new_value - unused


# -- review 9, findings 6, 9 and 11: a renewal and an upgrade in flight together, the
# upgrade's request key, quote expiry and pay checks, and order lines that add up --

MONTH = {"period": {"unit": "month", "count": 1}}


def update(config, statement, **params) -> None:
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def test_no_upgrade_while_a_renewal_order_is_unpaid(orders):
    config, _clock, _events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        before = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        renewal = service.quote_renewal(app["id"], MONTH)
        order = service.place_renewal(app["id"], {"quote_id": renewal["id"]})
        with pytest.raises(Conflict) as quoting:
            service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        assert quoting.value.code == "CONFLICT" and order["id"] in str(quoting.value)
        with pytest.raises(Conflict) as placing:
            service.place_upgrade(app["id"], {"quote_id": before["id"], "accept_terms": True})
        assert placing.value.code == "CONFLICT" and order["id"] in str(placing.value)
        service.pay_order(order["id"], {"payment_method": "balance"})
        # renewed: upgrading is possible again
        service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})


def test_no_renewal_while_an_upgrade_is_under_way(orders):
    config, _clock, _events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        renewal = service.quote_renewal(app["id"], MONTH)
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        upgrade = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        service.pay_order(upgrade["id"], {"payment_method": "balance"})
        with pytest.raises(Conflict) as quoting:
            service.quote_renewal(app["id"], MONTH)
        assert quoting.value.code == "CONFLICT" and upgrade["id"] in str(quoting.value)
        with pytest.raises(Conflict) as placing:
            service.place_renewal(app["id"], {"quote_id": renewal["id"]})
        assert placing.value.code == "CONFLICT" and upgrade["id"] in str(placing.value)
    publish_event(
        config["AMQP_URI"],
        "provisioning.instance.upgraded",
        upgraded_event(app, upgrade),
        subject=app["id"],
    )
    wait_for_order(config, upgrade["id"], "completed")
    with as_caller(config) as service:
        # the quote priced the configuration before the upgrade: no longer orderable
        with pytest.raises(Conflict) as stale:
            service.place_renewal(app["id"], {"quote_id": renewal["id"]})
        assert stale.value.code == "CONFLICT" and "upgrade" in str(stale.value)
        fresh = service.quote_renewal(app["id"], MONTH)
    assert fresh["amount_due"]["amount"] == 4000 * 3


def test_a_renewal_paid_for_a_configuration_the_app_no_longer_has_is_refunded(orders):
    config, _clock, events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        upgrade = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        # the upgrade is not paid yet: a renewal of spc_std x 3 may be ordered
        renewal = service.quote_renewal(app["id"], MONTH)
        order = service.place_renewal(app["id"], {"quote_id": renewal["id"]})
    # as if the upgrade's payment had landed first (billing's event, in a race)
    update(
        config, "UPDATE subscriptions SET specification_id = 'spc_pro' WHERE id = :s", s=app["id"]
    )
    with as_caller(config) as service:
        with pytest.raises(Conflict):  # charged, then cancelled: billing refunds it
            service.pay_order(order["id"], {"payment_method": "balance"})
        paid = service.get_order(order["id"])
        assert paid["status"] == "cancelled"
        assert "configuration" in paid["cancel_reason"]
        kept = service.get_purchased_app(app["id"])
    assert kept["expires_at"] == EXPIRES.isoformat()
    cancelled = [
        e for e in events_of(events, "orders.order.cancelled") if e["subject"] == order["id"]
    ]
    assert [e["data"]["refund"] for e in cancelled] == [renewal["amount_due"]]
    assert upgrade["status"] == "unpaid"


def test_a_retried_upgrade_with_the_same_key_answers_the_same_order(orders):
    config, _clock, _events = orders
    app = enabled_subscription(config)
    keyed = {**BUYER, "request_key": "k-upgrade"}
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
    with as_caller(config, keyed) as service:
        first = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        again = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
    assert again["id"] == first["id"]
    rows = sql(config, "SELECT id FROM orders WHERE type = 'upgrade'")
    assert [row["id"] for row in rows] == [first["id"]]


def test_an_upgrade_quote_binds_through_valid_until_and_its_expiry_names_it(orders):
    config, clock, _events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        clock.set(dt.datetime.fromisoformat(quote["valid_until"]))  # the last valid instant
        service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        late = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 4})
        clock.set(dt.datetime.fromisoformat(late["valid_until"]) + dt.timedelta(microseconds=1))
        with pytest.raises(BusinessRuleViolation) as expired:
            service.place_upgrade(app["id"], {"quote_id": late["id"], "accept_terms": True})
    assert expired.value.code == "QUOTE_EXPIRED"
    assert "quote_id" in expired.value.fields


@pytest.mark.parametrize("status", ["released", "expired"])
def test_paying_an_upgrade_of_an_app_no_longer_upgradable_is_refused_before_charging(
    orders, status
):
    config, _clock, _events = orders
    app = enabled_subscription(config)
    with as_caller(config) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
    update(config, "UPDATE subscriptions SET status = :st WHERE id = :s", st=status, s=app["id"])
    with as_caller(config) as service:
        with pytest.raises((Conflict, BusinessRuleViolation)) as refused:
            service.pay_order(order["id"], {"payment_method": "balance"})
        expected = "SUBSCRIPTION_RELEASED" if status == "released" else "UPGRADE_NOT_SUPPORTED"
        assert refused.value.code == expected
        assert service.get_order(order["id"])["status"] == "cancelled"
    assert order["id"] not in FakeBilling.charges


def _adds_up(line) -> bool:
    if line["unit_price"]["amount"] * line["quantity"] == line["amount"]["amount"]:
        return True
    # otherwise the line says what its unit price is
    return any("unit_price" in (item.get("description") or "") for item in line["breakdown"])


def test_renewal_and_upgrade_order_lines_add_up_and_name_the_period_priced(orders):
    config, clock, _events = orders
    app = enabled_subscription(config)
    year = {"unit": "year", "count": 1}
    with as_caller(config) as service:
        renewal = service.quote_renewal(app["id"], {"period": year})
        order = service.place_renewal(app["id"], {"quote_id": renewal["id"]})
        [line] = order["lines"]
        assert line["quantity"] == 3 and line["period"] == year
        assert line["unit_price"]["amount"] * 3 == line["amount"]["amount"] == 2500 * 12 * 3
        service.pay_order(order["id"], {"payment_method": "balance"})
        clock.set(EXPIRES + dt.timedelta(days=100, hours=5))
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 4})
        upgrade = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
    [line] = upgrade["lines"]
    assert line["period"] == year  # the period priced: the renewed year, not the purchase's
    assert line["quantity"] == 4 and line["amount"] == quote["amount_due"]
    assert _adds_up(line), line
