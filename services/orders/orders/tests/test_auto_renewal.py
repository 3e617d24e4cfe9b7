"""Automatic renewal of licenses, in real orders containers on PostgreSQL and RabbitMQ:
catalog, iam-agency and billing are small nameko services that answer like them
(billing keeps a balance and a credit per account and charges each order once), and the
sweep is run by hand (its timer is set far apart) on the test clock."""

import datetime as dt
import threading
import time

import eventlet
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook, replace_dependencies

from mercato.clock import ManualClock
from mercato.errors import BusinessRuleViolation, NotFound, PaymentRequired, ValidationError
from mercato.identity import BUYER as BUYER_ROLE
from mercato.identity import Identity
from mercato.standalone import standalone_unit_of_work
from mercato.transport import rpc
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue, caller, publish_event, wait_for
from orders import auto_renewal, domain, usecases
from orders.models import metadata
from orders.repository import REPOSITORIES
from orders.service import OrdersService
from orders.tests import fakes

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
EXPIRES = dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC)  # 2 months, delivered at START
DUE = dt.datetime(2027, 1, 19, 3, 0, tzinfo=dt.UTC)  # 03:00 UTC, 7 days before Jan 26
RENEWED = dt.datetime(2027, 2, 26, 23, 59, 59, tzinfo=dt.UTC)  # + 1 month
PRICE = fakes.PRICE  # per month and unit
MONTHLY = PRICE * 3  # a month of the tests' 3 units

BUYER = caller("acc_buyer", "buyer")
CUSTOMER = caller("acc_customer", "buyer", reseller_account_id="acc_reseller")
ORDER = {**fakes.ORDER_REQUEST, "product_id": "prd_license", "quantity": 3}
DELIVERY = {"prd_license": "license", "prd_known": "saas"}


class FakeCatalog:
    name = "catalog"
    unsold_periods: set = set()  # (unit, count) the product no longer sells

    @rpc
    def quote(self, payload):
        period = payload.get("period") or {}
        if (period.get("unit"), period.get("count")) in FakeCatalog.unsold_periods:
            raise ValidationError(
                "this period is not offered", {"period": ["not offered for this product"]}
            )
        quote = fakes.quote_for({**payload, "product_id": "prd_known"})
        return {
            **quote,
            "product_id": payload["product_id"],
            "delivery_method": DELIVERY[payload["product_id"]],
        }


class FakeIam:
    name = "iam_agency"

    @rpc
    def get_enterprise_project(self, project_id):
        return fakes.enterprise_project(project_id)


class FakeBilling:
    """Each order is charged once (a second pay answers the first payment), from the
    payer's balance or its credit, refused (402) when short."""

    name = "billing"
    balance: dict = {}
    credit: dict = {}
    charges: dict = {}
    calls: list = []
    delay = 0.0
    die_after_charge = False  # the answer is lost after the charge (a worker that died)
    pending_methods: set = set()  # methods whose payment stays pending (a card gateway)
    lock = threading.Lock()

    @rpc
    def pay_order(self, payload):
        FakeBilling.calls.append(payload)
        eventlet.sleep(FakeBilling.delay)
        with FakeBilling.lock:
            if payload["order_id"] in FakeBilling.charges:
                return FakeBilling.charges[payload["order_id"]]
            method, payer = payload["payment_method"], payload["payer_account_id"]
            if method in FakeBilling.pending_methods:
                payment = fakes.payment_answer(payload, "pending")
                FakeBilling.charges[payload["order_id"]] = payment
                return payment
            amount = payload["amount"]["amount"]
            funds = FakeBilling.credit if method == "credit" else FakeBilling.balance
            if method != "credit_card" and funds.get(payer, 0) < amount:
                raise PaymentRequired(f"the {method} is short")
            funds[payer] = funds.get(payer, 0) - amount
            payment = fakes.payment_answer(payload, "succeeded")
            FakeBilling.charges[payload["order_id"]] = payment
        if FakeBilling.die_after_charge:
            raise RuntimeError("billing's answer was lost after charging")
        return payment

    @rpc
    def get_payment(self, order_id):
        if order_id not in FakeBilling.charges:
            raise NotFound("no payment")
        return FakeBilling.charges[order_id]


@pytest.fixture
def orders(container_factory, make_service_config):
    FakeBilling.balance, FakeBilling.credit = {"acc_buyer": 10**9}, {}
    FakeBilling.charges, FakeBilling.calls, FakeBilling.delay = {}, [], 0.0
    FakeBilling.die_after_charge, FakeBilling.pending_methods = False, set()
    FakeCatalog.unsold_periods = set()
    config = make_service_config("orders", SUBSCRIPTION_SWEEP_SECONDS=3600)
    for fake in (FakeCatalog, FakeIam, FakeBilling):
        container_factory(fake, config).start()
    clock = ManualClock(START)
    replicas = []
    for _ in range(2):  # two replicas of orders on one database
        container = container_factory(OrdersService, config)
        replace_dependencies(container, clock=clock)
        container.start()
        replicas.append(container)
    events = EventQueue(config["AMQP_URI"], "orders", "orders.subscription.#")
    yield config, clock, replicas, events
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


def sweep(container):
    with entrypoint_hook(container, "renew_automatically") as run:
        run()


def enabled_subscription(config, product_id="prd_license", who=BUYER) -> dict:
    """A paid and delivered subscription of 3 units, from START to EXPIRES (UTC)."""
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
            "instance_id": None,
            "username": None,
            "management_url": None,
            "frontend_url": None,
            "license_key": "LIC-1" if product_id == "prd_license" else None,
            "has_password": False,
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


def auto_renewed(config, app, period=None, who=BUYER) -> dict:
    with as_caller(config, who) as service:
        return service.set_auto_renew(
            app["id"], {"enabled": True, "period": period or {"unit": "month", "count": 1}}
        )


def renewal_orders(config, subscription_id):
    return sql(
        config,
        "SELECT id, status, amount_due, payment_method, payment_deadline, auto_renewal_key "
        "FROM orders WHERE subscription_id = :s AND type = 'renewal' ORDER BY created_at",
        s=subscription_id,
    )


def subscription_row(config, subscription_id):
    [row] = sql(config, "SELECT * FROM subscriptions WHERE id = :s", s=subscription_id)
    return row


def events_of(events, event_type):
    time.sleep(0.5)
    return [event for event in events.read() if event["type"] == event_type]


def charged_orders():
    return [call["order_id"] for call in FakeBilling.calls]


def test_auto_renew_is_set_for_licenses_only_with_a_period(orders):
    config, _clock, _replicas, _events = orders
    app = enabled_subscription(config)
    answer = auto_renewed(config, app)
    assert answer["auto_renew"] is True
    assert answer["auto_renew_period"] == {"unit": "month", "count": 1}
    assert answer["next_auto_renew_at"] == DUE.isoformat()
    with as_caller(config) as service:
        with pytest.raises(ValidationError) as invalid:
            service.set_auto_renew(app["id"], {"enabled": True})
        assert "period" in invalid.value.fields
        shown = service.get_purchased_app(app["id"])
        assert shown["auto_renew"] is True
        assert shown["auto_renew_period"] == {"unit": "month", "count": 1}
        off = service.set_auto_renew(app["id"], {"enabled": False})
        assert (off["auto_renew"], off["next_auto_renew_at"]) == (False, None)
    saas = enabled_subscription(config, "prd_known")
    with as_caller(config) as service, pytest.raises(BusinessRuleViolation) as refused:
        service.set_auto_renew(
            saas["id"], {"enabled": True, "period": {"unit": "month", "count": 1}}
        )
    assert refused.value.code == "AUTO_RENEW_NOT_SUPPORTED"


def test_a_due_renewal_is_paid_from_the_balance_once_even_when_swept_twice(orders):
    config, clock, replicas, events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    clock.set(DUE - dt.timedelta(minutes=1))
    sweep(replicas[0])
    assert renewal_orders(config, app["id"]) == []  # not due yet
    clock.set(DUE)
    sweep(replicas[0])
    sweep(replicas[1])
    [order] = renewal_orders(config, app["id"])
    assert (order["status"], order["amount_due"], order["payment_method"]) == (
        "completed",
        MONTHLY,
        "balance",
    )
    assert order["auto_renewal_key"] == f"{app['id']}:{EXPIRES.isoformat()}"
    assert charged_orders()[1:] == [order["id"]]  # after the purchase, once
    row = subscription_row(config, app["id"])
    assert row["expires_at"] == RENEWED and row["status"] == "enabled"
    assert row["next_auto_renew_at"] == dt.datetime(2027, 2, 19, 3, 0, tzinfo=dt.UTC)
    [renewed] = events_of(events, "orders.subscription.renewed")
    assert renewed["data"]["automatic"] is True
    assert renewed["data"]["renewal_order_id"] == order["id"]
    assert renewed["data"]["expires_at"] == RENEWED.isoformat()
    # the next period is renewed at its own time, once
    clock.set(dt.datetime(2027, 2, 19, 3, 0, tzinfo=dt.UTC))
    sweep(replicas[1])
    assert [o["status"] for o in renewal_orders(config, app["id"])] == ["completed", "completed"]
    assert subscription_row(config, app["id"])["expires_at"] == dt.datetime(
        2027, 3, 26, 23, 59, 59, tzinfo=dt.UTC
    )


def test_two_replicas_sweeping_at_once_renew_once(orders):
    config, clock, replicas, events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    clock.set(DUE)
    FakeBilling.delay = 0.5  # billing is slow: both sweeps run side by side
    sweeps = [eventlet.spawn(sweep, replica) for replica in replicas]
    for running in sweeps:
        running.wait()
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "completed"
    assert len(FakeBilling.charges) == 2  # the purchase and the renewal
    assert subscription_row(config, app["id"])["expires_at"] == RENEWED
    assert len(events_of(events, "orders.subscription.renewed")) == 1


@pytest.mark.parametrize("completed_by", ["the next sweep", "billing's event"])
def test_a_charge_the_sweep_did_not_see_finish_extends_the_subscription_once(orders, completed_by):
    """The sweep's worker dies between billing's charge and the extension: billing's
    event, or the next sweep once the claim's lease is over, completes the same order."""
    config, clock, replicas, events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    clock.set(DUE)
    FakeBilling.die_after_charge = True
    sweep(replicas[0])  # the order's answer is lost; the sweep goes on with the others
    FakeBilling.die_after_charge = False
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "unpaid"
    assert subscription_row(config, app["id"])["expires_at"] == EXPIRES
    sweep(replicas[1])  # the claim's lease holds it: nothing is asked
    assert charged_orders().count(order["id"]) == 1
    if completed_by == "billing's event":
        payment = FakeBilling.charges[order["id"]]
        publish_event(
            config["AMQP_URI"],
            "billing.payment.succeeded",
            {
                "payment_id": payment["id"],
                "order_id": order["id"],
                "account_id": BUYER["account_id"],
                "payer_account_id": BUYER["account_id"],
                "payment_method": payment["payment_method"],
                "amount": payment["amount"],
                "enterprise_project_id": "default",
            },
            subject=payment["id"],
        )
        wait_for(
            lambda: renewal_orders(config, app["id"])[0]["status"] == "completed",
            "billing's event to complete the renewal",
            timeout=15,
        )
    clock.advance(auto_renewal.LEASE)
    sweep(replicas[1])
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "completed"
    row = subscription_row(config, app["id"])
    assert row["expires_at"] == RENEWED
    assert row["next_auto_renew_at"] == dt.datetime(2027, 2, 19, 3, 0, tzinfo=dt.UTC)
    assert len(events_of(events, "orders.subscription.renewed")) == 1
    assert len(FakeBilling.charges) == 2  # the purchase and the renewal, once


def test_without_funds_it_fails_is_tried_daily_and_stops_at_the_expiry(orders):
    config, clock, replicas, events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    FakeBilling.balance["acc_buyer"] = 0
    clock.set(DUE)
    sweep(replicas[0])
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "unpaid"
    assert order["payment_deadline"] == EXPIRES  # unpaid until the expiry
    [failed] = events_of(events, "orders.subscription.auto_renew_failed")
    assert failed["data"]["renewal_order_id"] == order["id"]
    assert failed["data"]["next_attempt_at"] == (DUE + dt.timedelta(days=1)).isoformat()
    assert "balance" in failed["data"]["reason"] and "credit" in failed["data"]["reason"]
    row = subscription_row(config, app["id"])
    assert row["auto_renew_failures"] == 1
    assert row["next_auto_renew_at"] == DUE + dt.timedelta(days=1)
    sweep(replicas[1])  # not due again before tomorrow
    assert len(FakeBilling.calls) == 1 + 2  # the purchase; balance and credit once
    # tried every day at 03:00 until the last day before the expiry
    for day in range(1, 8):
        clock.set(DUE + dt.timedelta(days=day))
        sweep(replicas[day % 2])
    failures = events_of(events, "orders.subscription.auto_renew_failed")
    assert len(failures) == 8  # Jan 19 to Jan 26
    assert failures[-1]["data"]["next_attempt_at"] is None
    assert subscription_row(config, app["id"])["auto_renew_failures"] == 8
    calls = len(FakeBilling.calls)
    clock.set(EXPIRES - dt.timedelta(seconds=1))
    sweep(replicas[0])
    assert len(FakeBilling.calls) == calls  # none left
    assert [o["id"] for o in renewal_orders(config, app["id"])] == [order["id"]]  # one order


def test_a_failed_renewal_is_paid_the_next_day_once_funds_arrive(orders):
    config, clock, replicas, _events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    FakeBilling.balance["acc_buyer"] = 0
    clock.set(DUE)
    sweep(replicas[0])
    FakeBilling.balance["acc_buyer"] = MONTHLY  # topped up
    clock.set(DUE + dt.timedelta(days=1))
    sweep(replicas[1])
    [order] = renewal_orders(config, app["id"])
    assert (order["status"], order["payment_method"]) == ("completed", "balance")
    row = subscription_row(config, app["id"])
    assert (row["expires_at"], row["auto_renew_failures"]) == (RENEWED, 0)


def test_a_short_balance_is_made_up_by_the_credit(orders):
    config, clock, replicas, events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    FakeBilling.balance["acc_buyer"] = MONTHLY - 1
    FakeBilling.credit["acc_buyer"] = MONTHLY
    clock.set(DUE)
    sweep(replicas[0])
    [order] = renewal_orders(config, app["id"])
    assert (order["status"], order["payment_method"]) == ("completed", "credit")
    assert FakeBilling.credit["acc_buyer"] == 0
    assert subscription_row(config, app["id"])["expires_at"] == RENEWED
    assert events_of(events, "orders.subscription.auto_renew_failed") == []


def test_turning_auto_renew_off_cancels_the_order_waiting_for_its_next_attempt(orders):
    config, clock, replicas, _events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    FakeBilling.balance["acc_buyer"] = 0
    clock.set(DUE)
    sweep(replicas[0])
    with as_caller(config) as service:
        service.set_auto_renew(app["id"], {"enabled": False})
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "cancelled"
    clock.set(DUE + dt.timedelta(days=1))
    calls = len(FakeBilling.calls)
    sweep(replicas[1])
    assert len(FakeBilling.calls) == calls


def test_a_resellers_customers_renewal_is_paid_by_its_reseller(orders):
    config, clock, replicas, events = orders
    FakeBilling.balance["acc_reseller"] = 10**9
    app = enabled_subscription(config, who=CUSTOMER)
    auto_renewed(config, app, who=CUSTOMER)
    clock.set(DUE)
    sweep(replicas[0])
    [order] = renewal_orders(config, app["id"])
    assert (order["status"], order["payment_method"]) == ("completed", "reseller")
    renewal_call = FakeBilling.calls[-1]
    assert (renewal_call["account_id"], renewal_call["payer_account_id"]) == (
        "acc_customer",
        "acc_reseller",
    )
    assert subscription_row(config, app["id"])["expires_at"] == RENEWED
    assert len(events_of(events, "orders.subscription.renewed")) == 1


def test_a_period_the_catalog_does_not_sell_is_refused_when_auto_renew_is_set(orders):
    config, _clock, _replicas, _events = orders
    app = enabled_subscription(config)
    FakeCatalog.unsold_periods = {("month", 7)}
    with as_caller(config) as service:
        with pytest.raises(ValidationError) as invalid:
            service.set_auto_renew(
                app["id"], {"enabled": True, "period": {"unit": "month", "count": 7}}
            )
        assert "period" in invalid.value.fields
        assert service.get_purchased_app(app["id"])["auto_renew"] is False
    assert subscription_row(config, app["id"])["next_auto_renew_at"] is None


def test_a_period_no_longer_sold_fails_its_renewal_alone_and_is_announced(orders):
    """The catalog refuses one subscription's period at renewal time: that attempt is a
    failure (counted, tried again tomorrow, announced); the batch's others renew."""
    config, clock, replicas, events = orders
    refused, renewed = enabled_subscription(config), enabled_subscription(config)
    auto_renewed(config, refused, {"unit": "month", "count": 2})
    auto_renewed(config, renewed)
    FakeCatalog.unsold_periods = {("month", 2)}  # withdrawn since auto-renew was set
    clock.set(DUE)
    sweep(replicas[0])
    assert subscription_row(config, renewed["id"])["expires_at"] == RENEWED
    assert renewal_orders(config, refused["id"]) == []
    row = subscription_row(config, refused["id"])
    assert (row["expires_at"], row["auto_renew_failures"]) == (EXPIRES, 1)
    assert row["next_auto_renew_at"] == DUE + dt.timedelta(days=1)
    [failed] = events_of(events, "orders.subscription.auto_renew_failed")
    assert failed["subject"] == refused["id"]
    assert failed["data"]["renewal_order_id"] is None  # no order could be priced
    assert "period" in failed["data"]["reason"]
    assert failed["data"]["next_attempt_at"] == (DUE + dt.timedelta(days=1)).isoformat()


def _waiting_on_a_lock(config) -> int:
    [row] = sql(
        config,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    return row["n"]


def test_switching_auto_renew_off_while_billings_payment_is_applied_does_not_deadlock(orders):
    """Locks are taken order first, then subscription, on every path: billing's
    payment event for the waiting renewal order (order, then subscription) and the
    buyer switching auto-renew off at the same moment both finish."""
    config, clock, replicas, _events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    FakeBilling.balance["acc_buyer"] = 0
    clock.set(DUE)
    sweep(replicas[0])
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "unpaid"
    buyer = Identity(
        account_id="acc_buyer", user_id="usr_buyer", account_type=BUYER_ROLE, roles=(BUYER_ROLE,)
    )

    def unit(command):
        return standalone_unit_of_work(
            config["DATABASE_URL"],
            metadata,
            service_name="orders",
            command=command,
            repositories=REPOSITORIES,
        )

    def switch_off():
        with unit("switch-off") as uow:
            return auto_renewal.set_auto_renew(
                uow,
                clock,
                buyer=buyer,
                subscription_id=app["id"],
                request={"enabled": False},
                catalog=None,  # switching off asks no price
            )

    with unit("payment-event") as payment:
        payment.orders.lock(order["id"])  # billing's event is being handled
        switching = eventlet.spawn(switch_off)
        wait_for(
            lambda: _waiting_on_a_lock(config) or switching.dead,
            "the switch-off to wait",
            timeout=10,
        )
        assert not switching.dead, switching.wait()
        usecases.record_payment(
            payment, clock, order_id=order["id"], payment_id="pay_late", payment_method="balance"
        )
        payment.commit()
    switched = switching.wait()
    assert switched["auto_renew"] is False
    [order] = renewal_orders(config, app["id"])
    assert order["status"] == "completed"
    row = subscription_row(config, app["id"])
    assert (row["expires_at"], row["auto_renew"]) == (RENEWED, False)


def test_a_buyers_card_payment_in_progress_is_left_alone_by_the_sweep(orders):
    """The buyer pays the waiting renewal order by card and billing answers pending:
    the sweep does not ask again while that mark is recent, and once it asks, a pending
    payment is in progress, not a failure."""
    config, clock, replicas, events = orders
    app = enabled_subscription(config)
    auto_renewed(config, app)
    FakeBilling.balance["acc_buyer"] = 0
    clock.set(DUE)
    sweep(replicas[0])
    [order] = renewal_orders(config, app["id"])
    [failed] = events_of(events, "orders.subscription.auto_renew_failed")
    next_attempt = DUE + dt.timedelta(days=1)
    clock.set(next_attempt - dt.timedelta(minutes=1))
    FakeBilling.pending_methods = {"credit_card"}
    with as_caller(config) as service:
        paying = service.pay_order(
            order["id"],
            {"payment_method": "credit_card", "card": {"token": "tok_4242424242424242"}},
        )
    assert paying["status"] == "unpaid"
    [mark] = sql(config, "SELECT payment_started_at FROM orders WHERE id = :o", o=order["id"])
    assert mark["payment_started_at"] is not None
    calls = len(FakeBilling.calls)
    clock.set(next_attempt)
    sweep(replicas[1])
    assert len(FakeBilling.calls) == calls  # billing is not asked under the buyer's payment
    [again] = sql(config, "SELECT payment_started_at FROM orders WHERE id = :o", o=order["id"])
    assert again["payment_started_at"] == mark["payment_started_at"]
    clock.set(next_attempt + auto_renewal.LEASE)
    sweep(replicas[0])  # the mark is old now: billing is asked, and answers pending
    assert len(FakeBilling.calls) > calls
    [still] = sql(
        config, "SELECT status, payment_started_at FROM orders WHERE id = :o", o=order["id"]
    )
    assert still["status"] == "unpaid" and still["payment_started_at"] is not None
    print(
        "CALLS",
        [(c["order_id"], c["payment_method"]) for c in FakeBilling.calls],
        FakeBilling.charges.keys(),
    )
    later = events_of(events, "orders.subscription.auto_renew_failed")
    assert {event["id"] for event in later} <= {failed["id"]}, later  # no new failure
    assert subscription_row(config, app["id"])["auto_renew_failures"] == 1


# -- the rules of time (no containers) --------------------------------------------------

SHANGHAI_EXPIRY = dt.datetime(2027, 1, 26, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 +08:00


def test_auto_renewal_is_due_at_03_00_local_seven_days_before_the_expiry_date():
    assert domain.auto_renew_due_at(EXPIRES, "UTC") == DUE
    # Jan 19 03:00 in Shanghai is Jan 18 19:00 UTC
    due = domain.auto_renew_due_at(SHANGHAI_EXPIRY, "Asia/Shanghai")
    assert due == dt.datetime(2027, 1, 18, 19, 0, tzinfo=dt.UTC)
    # turned on late: now
    late = dt.datetime(2027, 1, 22, 12, 0, tzinfo=dt.UTC)
    assert domain.auto_renew_at(SHANGHAI_EXPIRY, "Asia/Shanghai", late) == late


def test_a_failed_attempt_is_retried_at_03_00_local_the_next_day_until_the_expiry():
    first = dt.datetime(2027, 1, 18, 19, 0, tzinfo=dt.UTC)
    assert domain.next_auto_renew_attempt(
        SHANGHAI_EXPIRY, "Asia/Shanghai", first
    ) == first + dt.timedelta(days=1)
    last = dt.datetime(2027, 1, 25, 19, 0, tzinfo=dt.UTC)  # Jan 26 03:00 in Shanghai
    assert domain.next_auto_renew_attempt(SHANGHAI_EXPIRY, "Asia/Shanghai", last) is None
    assert domain.auto_renewal_key("sub_1", SHANGHAI_EXPIRY) == ("sub_1:2027-01-26T15:59:59+00:00")


def test_an_upgrade_costs_the_difference_for_the_time_left_never_below_zero():
    started = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    expires = dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    half = dt.datetime(2027, 1, 16, tzinfo=dt.UTC)
    assert domain.prorated(1001, started, expires, half) == 501  # 500.5 rounded half up
    price = domain.upgrade_price(
        target_price=3000,
        current_price=1000,
        currency="USD",
        target={"specification_name": "Pro", "quantity": 2},
        current={"specification_name": "Std", "quantity": 1},
        period_started_at=started,
        expires_at=expires,
        now=half,
    )
    assert price.amount == 1000
    assert [line["amount"]["amount"] for line in price.lines] == [1500, -500]
    cheaper = domain.upgrade_price(
        target_price=900,
        current_price=1000,
        currency="USD",
        target={"specification_name": "Pro", "quantity": 2},
        current={"specification_name": "Std", "quantity": 1},
        period_started_at=started,
        expires_at=expires,
        now=half,
    )
    assert cheaper.amount == 0
