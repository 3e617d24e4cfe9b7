"""Unsubscriptions (guide section 7) in orders running in a real container on PostgreSQL
and RabbitMQ, its neighbours replaced by small nameko services that answer like them:
the rules that refuse, the refund bound, the seller's review, the image's cloud rule,
billing's refund, and the races a review can meet."""

import datetime as dt
import threading

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook, replace_dependencies

from mercato.clock import ManualClock
from mercato.contracts.registry import contract_for
from mercato.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationError
from mercato.transport import rpc
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue, caller, publish_event, sample, wait_for
from orders import metrics
from orders.service import OrdersService
from orders.tests import fakes

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
PRICE = fakes.PRICE  # a month and unit

# product id -> (delivery method, service supervision)
PRODUCTS = {
    "prd_license": ("license", True),
    "prd_service": ("professional_service", True),
    "prd_saas_supervised": ("saas", True),
    "prd_saas": ("saas", False),
    "prd_image": ("image", False),
}


class FakeCatalog:
    name = "catalog"

    @rpc
    def quote(self, payload):
        method, supervised = PRODUCTS[payload["product_id"]]
        quote = fakes.quote_for({**payload, "product_id": "prd_known"})
        return {
            **quote,
            "product_id": payload["product_id"],
            "product_name": f"App {payload['product_id']}",
            "delivery_method": method,
            "service_supervision": supervised,
        }


class FakeIam:
    name = "iam_agency"

    @rpc
    def get_enterprise_project(self, project_id):
        return fakes.enterprise_project(project_id)


class FakeBilling:
    name = "billing"

    @rpc
    def pay_order(self, payload):
        return fakes.payment_answer(payload, "succeeded", payment_id=f"pay_{payload['order_id']}")


BUYER = caller("acc_buyer", "buyer")
OTHER = caller("acc_other", "buyer")
SELLER = caller("acc_seller", "seller")
OTHER_SELLER = caller("acc_other_seller", "seller")


@pytest.fixture
def orders(container_factory, make_service_config):
    config = make_service_config("orders")
    for fake in (FakeCatalog, FakeIam, FakeBilling):
        container_factory(fake, config).start()
    container = container_factory(OrdersService, config)
    clock = ManualClock(START)
    replace_dependencies(container, clock=clock)
    container.start()
    events = EventQueue(config["AMQP_URI"], "orders", "orders.#")
    yield config, clock, container, events
    events.close()


def as_caller(config, who):
    return ServiceRpcProxy("orders", config, timeout=20, context_data=signed_context(dict(who)))


def buy(config, product_id="prd_license", *, billing_mode="yearly_monthly", count=1, quantity=1):
    """A paid order of one line: answers the order and its subscription."""
    request = {
        "product_id": product_id,
        "specification_id": "spc_std",
        "billing_mode": billing_mode,
        "quantity": quantity,
        "accept_terms": True,
    }
    if billing_mode == "yearly_monthly":
        request["period"] = {"unit": "month", "count": count}
    with as_caller(config, BUYER) as service:
        order = service.place_order(request)
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
    subscription_id = _subscription_of(config, order["id"])
    return paid, subscription_id


def _subscription_of(config, order_id):
    import sqlalchemy as sa

    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT id FROM subscriptions WHERE order_id = :o"), {"o": order_id}
            ).scalar_one()
    finally:
        engine.dispose()


def ask(config, subscription_id, amount=None, **extra):
    body = {"subscription_id": subscription_id, "reason": "tests_completed", **extra}
    if amount is not None:
        body["refund"] = {"amount": amount, "currency": "USD"}
    with as_caller(config, BUYER) as service:
        return service.request_unsubscription(body)


def order_of(config, order_id):
    with as_caller(config, BUYER) as service:
        return service.get_order(order_id)


def purchased_app(config, subscription_id):
    with as_caller(config, BUYER) as service:
        return service.get_purchased_app(subscription_id)


def event_data(type_, **fields):
    return {**contract_for(type_).example, **fields}


def complete_flow(config, order, subscription_id):
    """supervision: the buyer accepted, the flow completed (orders completes the order)."""
    publish_event(
        config["AMQP_URI"],
        "supervision.flow.completed",
        event_data(
            "supervision.flow.completed",
            order_id=order["id"],
            subscription_id=subscription_id,
            account_id=BUYER["account_id"],
            seller_account_id=SELLER["account_id"],
            at=START,
            paid_at=START,
        ),
        subject="flw_test",
    )


def wait_for_order(config, order_id, status):
    return wait_for(
        lambda: (order := order_of(config, order_id))["status"] == status and order,
        f"the order to be {status}",
        timeout=15,
    )


def events_of(events, type_, subject=None, count=1):
    found = wait_for(
        lambda: (
            (
                matched := [
                    e
                    for e in events.read()
                    if e["type"] == type_ and (subject is None or e["subject"] == subject)
                ]
            )
            and len(matched) >= count
            and matched
        ),
        f"{count} {type_} event(s)",
        timeout=15,
    )
    return [e["data"] for e in found]


def refused_rule(call):
    with pytest.raises(BusinessRuleViolation) as raised:
        call()
    assert raised.value.code == "UNSUBSCRIPTION_NOT_ALLOWED"
    [rule] = raised.value.fields["subscription_id"]
    assert rule in raised.value.message
    return rule


# -- a license: requested, approved, refunded ---------------------------------------------


def test_license_request_approved_cancels_the_order_with_the_refund_and_releases_it(orders):
    config, clock, container, events = orders
    order, subscription_id = buy(config, "prd_license", count=2, quantity=3)
    paid = PRICE * 2 * 3
    with as_caller(config, BUYER) as service:
        [row] = service.list_eligible_unsubscriptions({})["items"]
    assert row["subscription_id"] == subscription_id and row["order_id"] == order["id"]
    assert row["max_refundable"] == {"amount": paid, "currency": "USD"}
    assert row["delivery_method"] == "license" and row["automatic"] is False
    assert row["seller_account_id"] == SELLER["account_id"]

    clock.advance(hours=1)
    request = ask(config, subscription_id, paid - 100, share_contact=True)
    assert request["status"] == "pending_review"
    assert request["refund"] == {"amount": paid - 100, "currency": "USD"}
    assert request["max_refundable"] == {"amount": paid, "currency": "USD"}
    [requested] = events_of(events, "orders.unsubscription.requested")
    assert requested["unsubscription_id"] == request["id"]
    assert requested["seller_account_id"] == SELLER["account_id"]
    assert requested["share_contact"] is True and requested["reason"] == "tests_completed"
    # pending: not eligible again, listed for the buyer and the seller
    with as_caller(config, BUYER) as service:
        assert service.list_eligible_unsubscriptions({})["items"] == []
        assert service.get_unsubscription(request["id"])["status"] == "pending_review"
    with as_caller(config, SELLER) as service:
        [seen] = service.list_seller_unsubscriptions({"status": "pending_review"})["items"]
    assert seen["buyer"] == {"account_id": BUYER["account_id"], "shared_contact": True}

    clock.advance(hours=1)
    with as_caller(config, SELLER) as service:
        approved = service.approve_unsubscription(request["id"])
    assert approved["status"] == "approved"
    assert approved["reviewed_at"] == (START + dt.timedelta(hours=2)).isoformat()
    cancelled = order_of(config, order["id"])
    assert cancelled["status"] == "cancelled" and request["id"] in cancelled["cancel_reason"]
    app = purchased_app(config, subscription_id)
    assert app["status"] == "released"

    # the cancellation is the one billing refunds and supervision closes the flow on
    [cancellation] = events_of(events, "orders.order.cancelled", subject=order["id"])
    assert cancellation["payment_id"] == f"pay_{order['id']}"
    assert cancellation["refund"] == {"amount": paid - 100, "currency": "USD"}
    [released] = events_of(events, "orders.subscription.released")
    assert released["reason"] == "unsubscribed" and released["subscription_id"] == subscription_id
    [approval] = events_of(events, "orders.unsubscription.approved")
    assert approval["automatic"] is False and approval["refund"] == cancellation["refund"]

    # the refund waits: the gauge says how long
    clock.advance(minutes=30)
    with entrypoint_hook(container, "watch_unsubscription_refunds") as watch:
        watch()
    assert metrics.UNSUBSCRIPTION_REFUND_OLDEST_APPROVED._value.get() == 1800
    publish_event(
        config["AMQP_URI"],
        "billing.refund.completed",
        event_data(
            "billing.refund.completed",
            order_id=order["id"],
            payment_id=f"pay_{order['id']}",
            amount={"amount": paid - 100, "currency": "USD"},
        ),
        subject="rfd_test",
    )
    with as_caller(config, BUYER) as service:
        refunded = wait_for(
            lambda: (
                (found := service.get_unsubscription(request["id"]))["status"] == "refunded"
                and found
            ),
            "the request to be refunded",
            timeout=15,
        )
        assert service.list_unsubscriptions({"status": "refunded"})["total"] == 1
    assert refunded["refunded_at"] == (START + dt.timedelta(hours=2, minutes=30)).isoformat()
    with entrypoint_hook(container, "watch_unsubscription_refunds") as watch:
        watch()
    assert metrics.UNSUBSCRIPTION_REFUND_OLDEST_APPROVED._value.get() == 0


@pytest.mark.parametrize("product_id", ["prd_service", "prd_saas_supervised"])
def test_services_and_supervised_saas_may_be_unsubscribed_while_not_completed(orders, product_id):
    config, _clock, _container, _events = orders
    _order, subscription_id = buy(config, product_id)
    assert ask(config, subscription_id, 1)["status"] == "pending_review"


# -- refusals ----------------------------------------------------------------------------


def test_refused_rules_name_the_rule(orders):
    config, _clock, _container, _events = orders
    _o, pay_per_use = buy(config, "prd_license", billing_mode="pay_per_use")
    _o, unsupervised = buy(config, "prd_saas")
    _o, one_time = buy(config, "prd_image", billing_mode="one_time")
    completed_order, completed = buy(config, "prd_license")
    complete_flow(config, completed_order, completed)
    wait_for_order(config, completed_order["id"], "completed")
    _o, pending = buy(config, "prd_service")
    ask(config, pending, 100)
    refused_before = sample("mercato_unsubscriptions_total", outcome="refused")

    for subscription_id, rule in (
        (pay_per_use, "pay_per_use"),
        (unsupervised, "unsupervised_saas"),
        (one_time, "one_time_image"),
        (completed, "transaction_completed"),
        (pending, "already_requested"),
    ):
        assert refused_rule(lambda s=subscription_id: ask(config, s, 100)) == rule
    assert sample("mercato_unsubscriptions_total", outcome="refused") == refused_before + 5
    with as_caller(config, BUYER) as service:
        assert service.list_eligible_unsubscriptions({})["total"] == 0


def test_a_released_subscription_is_refused(orders):
    config, _clock, _container, _events = orders
    _order, subscription_id = buy(config, "prd_license")
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.failed",
        event_data(
            "provisioning.delivery.failed",
            subscription_id=subscription_id,
            order_id=_order["id"],
            account_id=BUYER["account_id"],
        ),
        subject="dlv_failed",
    )
    wait_for_order(config, _order["id"], "cancelled")
    assert refused_rule(lambda: ask(config, subscription_id, 100)) == "released"


def test_a_pending_request_is_closed_when_its_subscription_is_released(orders):
    config, _clock, _container, events = orders
    order, subscription_id = buy(config, "prd_license")
    request = ask(config, subscription_id, 100)
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.failed",
        event_data(
            "provisioning.delivery.failed",
            subscription_id=subscription_id,
            order_id=order["id"],
            account_id=BUYER["account_id"],
        ),
        subject="dlv_failed_pending",
    )
    wait_for_order(config, order["id"], "cancelled")
    with as_caller(config, BUYER) as service:
        closed = service.get_unsubscription(request["id"])
    assert closed["status"] == "rejected"
    assert closed["rejection_reason"] == "the subscription was released"
    assert closed["reviewed_at"] is not None
    [rejection] = events_of(events, "orders.unsubscription.rejected", subject=request["id"])
    assert rejection["rejection_reason"] == "the subscription was released"
    with pytest.raises(Conflict):
        seller_call(config, "approve_unsubscription", request["id"])()


def _sql(config, statement, **params):
    import sqlalchemy as sa

    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def test_pending_requests_are_closed_when_the_sweep_releases_their_subscriptions(orders):
    """A subscription of an order still in its guarantee period (e.g. one line accepted,
    another not yet) can run past its expiry, grace and retention: the sweep's release
    closes its pending request in the same batch."""
    config, clock, container, events = orders
    requests = []
    for _ in range(3):
        _order, subscription_id = buy(config, "prd_license")
        requests.append((subscription_id, ask(config, subscription_id, 100)))
    kept_order, kept = buy(config, "prd_license")
    kept_request = ask(config, kept, 100)
    # enabled (its line accepted) while the order awaits the acceptance of another
    _sql(
        config,
        "UPDATE subscriptions SET status = 'enabled', expires_at = :at WHERE id = ANY(:ids)",
        at=START + dt.timedelta(days=1),
        ids=[subscription_id for subscription_id, _ in requests],
    )
    clock.advance(days=40)
    with entrypoint_hook(container, "run_subscription_lifecycle") as sweep:
        sweep()
    with as_caller(config, BUYER) as service:
        for subscription_id, request in requests:
            assert purchased_app(config, subscription_id)["status"] == "released"
            closed = service.get_unsubscription(request["id"])
            assert closed["status"] == "rejected"
            assert closed["rejection_reason"] == "the subscription was released"
        assert service.get_unsubscription(kept_request["id"])["status"] == "pending_review"
    rejections = events_of(events, "orders.unsubscription.rejected", count=3)
    assert sorted(r["unsubscription_id"] for r in rejections) == sorted(
        request["id"] for _, request in requests
    )
    assert all(r["rejection_reason"] == "the subscription was released" for r in rejections)
    assert kept_order["status"] == "paid"


def test_the_refund_is_above_zero_at_most_what_was_paid_in_the_orders_currency(orders):
    config, _clock, _container, _events = orders
    _order, subscription_id = buy(config, "prd_license")
    with pytest.raises(BusinessRuleViolation) as raised:
        ask(config, subscription_id, PRICE + 1)
    assert raised.value.code == "REFUND_ABOVE_PAID" and "refund" in raised.value.fields
    for body, field in (
        ({"refund": {"amount": 0, "currency": "USD"}}, "refund"),
        ({"refund": {"amount": -5, "currency": "USD"}}, "refund"),
        ({"refund": {"amount": 100, "currency": "EUR"}}, "refund"),
        ({}, "refund"),
        ({"refund": {"amount": 100, "currency": "USD"}, "reason": "because"}, "reason"),
        ({"refund": {"amount": 100, "currency": "USD"}, "reason": "other"}, "reason_detail"),
        (
            {"refund": {"amount": 100, "currency": "USD"}, "reason_detail": "x" * 501},
            "reason_detail",
        ),
    ):
        with as_caller(config, BUYER) as service, pytest.raises(ValidationError) as raised:
            service.request_unsubscription(
                {"subscription_id": subscription_id, "reason": "tests_completed", **body}
            )
        assert field in {key.split(".")[0] for key in raised.value.fields}, body
    # the whole payment may be refunded; other with its detail is fine
    request = ask(config, subscription_id, PRICE, reason="other", reason_detail="moved away")
    assert request["refund"]["amount"] == PRICE and request["reason_detail"] == "moved away"


def test_only_the_buyer_asks_and_only_the_products_seller_reviews(orders):
    config, _clock, _container, _events = orders
    _order, subscription_id = buy(config, "prd_license")
    with as_caller(config, OTHER) as service, pytest.raises(NotFound):
        service.request_unsubscription(
            {
                "subscription_id": subscription_id,
                "reason": "tests_completed",
                "refund": {"amount": 1, "currency": "USD"},
            }
        )
    with as_caller(config, SELLER) as service, pytest.raises(Forbidden):
        service.list_eligible_unsubscriptions({})
    request = ask(config, subscription_id, 100)
    with as_caller(config, OTHER) as service:
        with pytest.raises(NotFound):
            service.get_unsubscription(request["id"])
        assert service.list_unsubscriptions({})["total"] == 0
    with as_caller(config, OTHER_SELLER) as service:
        assert service.list_seller_unsubscriptions({})["total"] == 0
        for call in (
            lambda: service.approve_unsubscription(request["id"]),
            lambda: service.reject_unsubscription(request["id"], {"reason": "no"}),
        ):
            with pytest.raises(NotFound):
                call()
    with as_caller(config, BUYER) as service, pytest.raises(Forbidden):
        service.approve_unsubscription(request["id"])


# -- rejection -------------------------------------------------------------------------


def test_rejected_request_refunds_nothing_and_the_buyer_may_ask_again(orders):
    config, _clock, _container, events = orders
    order, subscription_id = buy(config, "prd_license")
    first = ask(config, subscription_id, 500)
    with as_caller(config, SELLER) as service:
        rejected = service.reject_unsubscription(first["id"], {"reason": "We agreed on 2.00"})
        assert rejected["status"] == "rejected"
        assert rejected["rejection_reason"] == "We agreed on 2.00"
        for call in (
            lambda: service.approve_unsubscription(first["id"]),
            lambda: service.reject_unsubscription(first["id"], {"reason": "again"}),
        ):
            with pytest.raises(Conflict):
                call()
        with pytest.raises(ValidationError):
            service.reject_unsubscription(first["id"], {})
    [data] = events_of(events, "orders.unsubscription.rejected")
    assert data["rejection_reason"] == "We agreed on 2.00"
    assert order_of(config, order["id"])["status"] == "paid"
    assert purchased_app(config, subscription_id)["status"] == "enabling"
    assert not [e for e in events.read() if e["type"] == "orders.order.cancelled"]

    second = ask(config, subscription_id, 200)
    with as_caller(config, SELLER) as service:
        assert service.approve_unsubscription(second["id"])["status"] == "approved"
    [cancellation] = events_of(events, "orders.order.cancelled")
    assert cancellation["refund"] == {"amount": 200, "currency": "USD"}


# -- images: the cloud's rule ------------------------------------------------------------


def test_image_unused_period_is_refunded_at_once_without_review(orders):
    config, clock, _container, events = orders
    order, subscription_id = buy(config, "prd_image", count=1)
    app = purchased_app(config, subscription_id)
    expires_at = dt.datetime.fromisoformat(app["expires_at"])
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.succeeded",
        event_data(
            "provisioning.delivery.succeeded",
            subscription_id=subscription_id,
            order_id=order["id"],
            account_id=BUYER["account_id"],
            delivery_method="image",
            starts_at=START,
            expires_at=expires_at,
        ),
        subject="dlv_image",
    )
    wait_for_order(config, order["id"], "completed")
    clock.advance(days=10, seconds=7)
    now = clock.now()
    whole = (expires_at - START) // dt.timedelta(microseconds=1)
    left = (expires_at - now) // dt.timedelta(microseconds=1)
    unused = PRICE * left // whole
    with as_caller(config, BUYER) as service:
        [row] = service.list_eligible_unsubscriptions({})["items"]
    assert row["automatic"] is True and row["max_refundable"]["amount"] == unused

    request = ask(config, subscription_id, reason="redundant_after_deployment")
    assert request["status"] == "approved" and request["refund"]["amount"] == unused
    assert order_of(config, order["id"])["status"] == "cancelled"
    assert purchased_app(config, subscription_id)["status"] == "released"
    [approval] = events_of(events, "orders.unsubscription.approved")
    assert approval["automatic"] is True and approval["refund"]["amount"] == unused
    [released] = events_of(events, "orders.subscription.released")
    assert released["reason"] == "unsubscribed"
    [cancellation] = events_of(events, "orders.order.cancelled")
    assert cancellation["refund"]["amount"] == unused and cancellation["payment_id"]
    assert not [e for e in events.read() if e["type"] == "orders.unsubscription.requested"]


def deliver_image(config, order, subscription_id):
    expires_at = dt.datetime.fromisoformat(purchased_app(config, subscription_id)["expires_at"])
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.succeeded",
        event_data(
            "provisioning.delivery.succeeded",
            subscription_id=subscription_id,
            order_id=order["id"],
            account_id=BUYER["account_id"],
            delivery_method="image",
            starts_at=START,
            expires_at=expires_at,
        ),
        subject=f"dlv_{subscription_id}",
    )
    wait_for_order(config, order["id"], "completed")


def renew(config, subscription_id, months):
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(
            subscription_id, {"period": {"unit": "month", "count": months}}
        )
        renewal = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        service.pay_order(renewal["id"], {"payment_method": "balance"})
    return wait_for_order(config, renewal["id"], "completed")


def test_a_renewed_image_is_refused_once_the_first_orders_period_is_over(orders):
    """The cloud rule refunds the unused part of the period the first order bought; after
    a renewal that period is over (the renewal's money is not the first order's): the
    request is refused with ``period_ended``, as the API guide says."""
    config, clock, _container, _events = orders
    order, subscription_id = buy(config, "prd_image", count=1)
    deliver_image(config, order, subscription_id)
    clock.advance(days=10)
    renew(config, subscription_id, 12)
    with as_caller(config, BUYER) as service:
        assert service.list_eligible_unsubscriptions({})["items"] == []
    assert refused_rule(lambda: ask(config, subscription_id)) == "period_ended"
    clock.advance(days=30)  # a month into the renewed year
    assert refused_rule(lambda: ask(config, subscription_id)) == "period_ended"
    assert order_of(config, order["id"])["status"] == "completed"
    assert purchased_app(config, subscription_id)["status"] == "enabled"


def test_image_whose_period_ended_is_refused(orders):
    config, clock, _container, _events = orders
    _order, subscription_id = buy(config, "prd_image", count=1)
    clock.advance(days=40)
    assert refused_rule(lambda: ask(config, subscription_id)) == "period_ended"


# -- races -------------------------------------------------------------------------------


def race(*calls):
    """Run the calls at once; answer each one's result or the exception it raised."""
    outcomes = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index, call):
        barrier.wait()
        try:
            outcomes[index] = call()
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def seller_call(config, method, *args):
    def call():
        with as_caller(config, SELLER) as service:
            return getattr(service, method)(*args)

    return call


def test_two_approvals_at_once_approve_and_refund_once(orders):
    config, _clock, _container, events = orders
    _order, subscription_id = buy(config, "prd_license")
    request = ask(config, subscription_id, 300)
    outcomes = race(*(seller_call(config, "approve_unsubscription", request["id"]),) * 4)
    assert sum(isinstance(o, dict) and o["status"] == "approved" for o in outcomes) == 1
    assert sum(isinstance(o, Conflict) for o in outcomes) == 3
    events_of(events, "orders.unsubscription.approved")
    assert len([e for e in events.read() if e["type"] == "orders.order.cancelled"]) == 1


def test_approval_racing_rejection_is_decided_once(orders):
    config, _clock, _container, _events = orders
    order, subscription_id = buy(config, "prd_license")
    request = ask(config, subscription_id, 300)
    approval, rejection = race(
        seller_call(config, "approve_unsubscription", request["id"]),
        seller_call(config, "reject_unsubscription", request["id"], {"reason": "no"}),
    )
    decided = [o for o in (approval, rejection) if isinstance(o, dict)]
    assert len(decided) == 1
    assert isinstance(approval if isinstance(rejection, dict) else rejection, Conflict)
    with as_caller(config, BUYER) as service:
        final = service.get_unsubscription(request["id"])
    assert final["status"] == decided[0]["status"]
    expected_order = "cancelled" if final["status"] == "approved" else "paid"
    assert order_of(config, order["id"])["status"] == expected_order


def test_approval_after_the_acceptance_completed_the_order_is_refused(orders):
    config, _clock, _container, events = orders
    order, subscription_id = buy(config, "prd_license")
    request = ask(config, subscription_id, 300)
    complete_flow(config, order, subscription_id)
    wait_for_order(config, order["id"], "completed")
    # the acceptance closed the pending request (rejected, with the reason the buyer reads)
    with pytest.raises(Conflict):
        seller_call(config, "approve_unsubscription", request["id"])()
    with as_caller(config, BUYER) as service:
        closed = service.get_unsubscription(request["id"])
    assert closed["status"] == "rejected"
    assert closed["rejection_reason"] == (
        "the transaction guarantee period ended when the delivery was accepted"
    )
    [rejection] = events_of(events, "orders.unsubscription.rejected", subject=request["id"])
    assert rejection["rejection_reason"] == closed["rejection_reason"]
    assert rejection["subscription_id"] == subscription_id
    assert purchased_app(config, subscription_id)["status"] == "enabled"
    with pytest.raises(Conflict):
        seller_call(config, "reject_unsubscription", request["id"], {"reason": "late"})()


def test_approval_racing_the_acceptance_leaves_one_outcome(orders):
    config, _clock, _container, _events = orders
    order, subscription_id = buy(config, "prd_license")
    request = ask(config, subscription_id, 300)
    approval, _published = race(
        seller_call(config, "approve_unsubscription", request["id"]),
        lambda: complete_flow(config, order, subscription_id),
    )
    final = wait_for(
        lambda: (
            (found := order_of(config, order["id"]))["status"] in ("completed", "cancelled")
            and found
        ),
        "the order to be decided",
        timeout=15,
    )
    app = purchased_app(config, subscription_id)
    with as_caller(config, BUYER) as service:
        decided = service.get_unsubscription(request["id"])
    if isinstance(approval, dict):
        assert final["status"] == "cancelled" and app["status"] == "released"
        assert decided["status"] == "approved"
    else:
        # the acceptance came first: it closed the request (Conflict), or the approval
        # saw the completed order before the request was closed
        assert isinstance(approval, Conflict | BusinessRuleViolation)
        if isinstance(approval, BusinessRuleViolation):
            assert approval.fields == {"subscription_id": ["transaction_completed"]}
        assert final["status"] == "completed" and app["status"] == "enabled"
        assert decided["status"] == "rejected"


def test_two_requests_at_once_make_one(orders):
    config, _clock, _container, _events = orders
    _order, subscription_id = buy(config, "prd_license")
    outcomes = race(*(lambda: ask(config, subscription_id, 100),) * 4)
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    refused = [o for o in outcomes if not isinstance(o, dict)]
    assert all(
        isinstance(o, BusinessRuleViolation)
        and o.fields == {"subscription_id": ["already_requested"]}
        for o in refused
    )
    with as_caller(config, BUYER) as service:
        assert service.list_unsubscriptions({})["total"] == 1
