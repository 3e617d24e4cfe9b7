"""orders' use cases against an in-memory repository: the rules of placing, paying,
delivering and cancelling, in milliseconds. ``test_service.py`` runs the same use
cases in a real container on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import datetime as dt

import pytest

from mercato.clock import ManualClock
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    ValidationError,
)
from mercato.identity import Identity
from mercato_testing.fakes import FakeUnitOfWork
from orders import usecases
from orders.domain import ORDER
from orders.tests import fakes

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=24)
BUYER = Identity("acc_buyer", "usr_buyer", "buyer", ("buyer",))
OTHER = Identity("acc_other", "usr_other", "buyer", ("buyer",))
CUSTOMER = Identity(
    "acc_customer", "usr_customer", "buyer", ("buyer",), reseller_account_id="acc_reseller"
)
CARD = {"token": "tok_4242424242424242"}
ORDER_REQUEST = fakes.ORDER_REQUEST


class World:
    """A unit of work over a fake repository, a clock and the fake neighbours."""

    def __init__(self) -> None:
        self.repository = fakes.FakeOrderRepository()
        self.uow = FakeUnitOfWork(
            orders=self.repository, unsubscriptions=fakes.FakeUnsubscriptionRepository()
        )
        self.clock = ManualClock(START)
        self.billing = fakes.Billing()
        self.agencies = fakes.Agencies()
        self.provisioning = fakes.Provisioning()

    def place(self, buyer: Identity = BUYER, **changes) -> dict:
        return usecases.place_order(
            self.uow,
            self.clock,
            buyer=buyer,
            request={**ORDER_REQUEST, **changes},
            catalog=fakes.Catalog(),
            iam=fakes.Iam(),
            billing=self.billing,
            payment_window=WINDOW,
            agencies=self.agencies,
            provisioning=self.provisioning,
        )

    def pay(self, order_id: str, buyer: Identity = BUYER, method: str = "balance") -> dict:
        request: dict = {"payment_method": method}
        if method == "credit_card":
            request["card"] = CARD
        return usecases.pay_order(
            self.uow,
            self.clock,
            buyer=buyer,
            order_id=order_id,
            request=request,
            billing=self.billing,
        )

    def paid_subscription(self) -> tuple[dict, str]:
        order = self.pay(self.place()["id"])
        (subscription,) = self.repository.lock_subscriptions_of(order["id"])
        return order, subscription.id

    def events(self, event_type: str) -> list:
        return self.uow.committed_events(event_type)


@pytest.fixture
def world() -> World:
    return World()


# -- placing --


def test_an_order_fixes_the_quoted_price_and_announces_itself(world):
    order = world.place()
    assert order["status"] == "unpaid"
    assert order["amount_due"] == {"amount": 2500 * 2 * 3, "currency": "USD"}
    assert order["payment_deadline"] == START + WINDOW
    (created,) = world.events("orders.order.created")
    assert created.data["amount_due"] == order["amount_due"]
    assert created.data["lines"][0]["quantity"] == 3


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"accept_terms": False}, BusinessRuleViolation),
        ({"enterprise_project_id": "proj_someone_elses"}, ValidationError),
        ({"product_id": "prd_unknown"}, NotFound),
    ],
)
def test_a_refused_order_stores_and_announces_nothing(world, changes, error):
    with pytest.raises(error):
        world.place(**changes)
    assert (
        world.repository.page_of_account("acc_buyer", status=None, page=1, page_size=10).total == 0
    )
    assert world.uow.committed == []


def test_a_reseller_customers_order_is_paid_by_the_reseller_at_once(world):
    order = world.place(buyer=CUSTOMER)
    assert order["status"] == "paid" and order["paid_by_reseller"]
    (request,) = world.billing.calls
    assert request["payment_method"] == "reseller"
    assert request["payer_account_id"] == "acc_reseller"


def test_a_reseller_customers_order_stays_unpaid_when_billing_does_not_answer(world):
    world.billing.refuse = ServiceUnavailable("billing did not answer")
    assert world.place(buyer=CUSTOMER)["status"] == "unpaid"


# -- paying --


def test_paying_creates_one_enabling_subscription_per_line_for_the_period(world):
    order, subscription_id = world.paid_subscription()
    assert order["status"] == "paid" and order["payment_method"] == "balance"
    subscription = world.repository.subscription(subscription_id)
    assert subscription.status == "enabling"
    assert subscription.expires_at == dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC)
    (paid,) = world.events("orders.order.paid")
    assert paid.data["subscriptions"][0]["subscription_id"] == subscription_id
    assert [e.subject for e in world.events("orders.subscription.created")] == [subscription_id]


def test_paying_a_paid_order_is_a_conflict_and_charges_nothing_more(world):
    order, _ = world.paid_subscription()
    with pytest.raises(Conflict):
        world.pay(order["id"])
    assert len(world.billing.calls) == 1


def test_a_declined_payment_leaves_the_order_unpaid_to_pay_again(world):
    order = world.place()
    world.billing.next_status = "failed"
    with pytest.raises(PaymentRequired):
        world.pay(order["id"], method="credit_card")
    stored = world.repository.get(order["id"])
    assert stored.status == "unpaid" and stored.payment_started_at is None
    world.billing.next_status = "succeeded"
    assert world.pay(order["id"])["status"] == "paid"


def test_a_refused_payment_clears_the_mark_so_the_order_may_be_cancelled(world):
    order = world.place()
    world.billing.refuse = fakes.INSUFFICIENT
    with pytest.raises(PaymentRequired):
        world.pay(order["id"])
    assert (
        usecases.cancel_order(world.uow, world.clock, buyer=BUYER, order_id=order["id"])["status"]
        == "cancelled"
    )


def test_a_pending_card_payment_is_settled_by_billings_event_once(world):
    order = world.place()
    world.billing.next_status = "pending"
    assert world.pay(order["id"], method="credit_card")["payment_pending"] is True
    for _ in range(2):  # the event, delivered twice
        usecases.record_payment(
            world.uow, world.clock, order_id=order["id"], payment_id="pay_x", payment_method="card"
        )
        world.uow.commit()
    assert usecases.is_payment_recorded(world.uow, order_id=order["id"], payment_id="pay_x")
    assert len(world.events("orders.order.paid")) == 1
    assert len(world.repository.lock_subscriptions_of(order["id"])) == 1


def test_a_payment_for_a_cancelled_order_leaves_it_cancelled(world):
    order = world.place()
    usecases.cancel_order(world.uow, world.clock, buyer=BUYER, order_id=order["id"])
    usecases.record_payment(
        world.uow, world.clock, order_id=order["id"], payment_id="pay_late", payment_method="card"
    )
    assert world.repository.get(order["id"]).status == "cancelled"
    assert world.events("orders.order.paid") == []


def test_someone_elses_order_is_not_found(world):
    order = world.place()
    with pytest.raises(NotFound):
        world.pay(order["id"], buyer=OTHER)
    with pytest.raises(NotFound):
        usecases.get_order(world.uow, buyer=OTHER, order_id=order["id"])


def test_paying_after_the_window_cancels_the_order_and_is_a_conflict(world):
    order = world.place()
    world.clock.advance(WINDOW)
    with pytest.raises(Conflict, match="payment window"):
        world.pay(order["id"])
    assert world.repository.get(order["id"]).status == "cancelled"
    assert world.billing.calls == []


# -- delivering --


def test_a_delivered_app_is_enabled_and_its_order_completed_once(world):
    order, subscription_id = world.paid_subscription()
    for _ in range(2):
        usecases.deliver_subscription(world.uow, world.clock, subscription_id=subscription_id)
        world.uow.commit()
    assert world.repository.subscription(subscription_id).status == "enabled"
    assert world.repository.get(order["id"]).status == "completed"
    assert len(world.events("orders.subscription.activated")) == 1
    assert len(world.events("orders.order.completed")) == 1


def test_a_supervised_app_awaits_acceptance_and_stays_enabling(world):
    order = world.pay(world.place(product_id="prd_supervised")["id"])
    (subscription,) = world.repository.lock_subscriptions_of(order["id"])
    usecases.deliver_subscription(world.uow, world.clock, subscription_id=subscription.id)
    world.uow.commit()
    assert world.repository.get(order["id"]).status == "awaiting_acceptance"
    assert subscription.status == "enabling"


def test_a_failed_delivery_cancels_the_order_once_and_asks_for_a_refund(world):
    order, subscription_id = world.paid_subscription()
    for _ in range(2):
        usecases.cancel_undelivered_order(
            world.uow, world.clock, subscription_id=subscription_id, reason="seller down"
        )
        world.uow.commit()
    (cancelled,) = world.events("orders.order.cancelled")
    assert cancelled.data["refund"] == order["amount_due"]
    assert cancelled.data["payment_id"] == f"pay_{order['id']}"
    assert world.repository.subscription(subscription_id).status == "released"


# -- the seller's orders --

SELLER = Identity("acc_seller", "usr_seller", "seller", ("seller",))  # fakes.quote_for's
OTHER_SELLER = Identity("acc_other_seller", "usr_other_seller", "seller", ("seller",))


def test_a_buyer_shares_its_contact_with_an_order_only_when_it_says_so(world):
    assert world.place()["share_contact"] is False
    assert world.place(share_contact=True)["share_contact"] is True


def test_a_seller_sees_the_orders_of_its_products_newest_first_with_their_buyers(world):
    first = world.place(share_contact=True)
    world.clock.advance(minutes=1)
    second = world.place(buyer=OTHER)
    world.pay(second["id"], buyer=OTHER)

    page = usecases.list_seller_orders(world.uow, seller=SELLER, status=None, page=1, page_size=10)

    assert page["total"] == 2
    assert [order["id"] for order in page["items"]] == [second["id"], first["id"]]
    newest, oldest = page["items"]
    assert newest["buyer"] == {"account_id": OTHER.account_id, "shared_contact": False}
    assert oldest["buyer"] == {"account_id": BUYER.account_id, "shared_contact": True}
    assert (newest["status"], newest["paid_at"]) == ("paid", START + dt.timedelta(minutes=1))
    assert oldest["amount"] == first["amount_due"]
    assert [line["id"] for line in oldest["lines"]] == [first["lines"][0]["id"]]
    # how the buyer pays and accounts for it (its enterprise projects) is the buyer's own
    assert "payment_method" not in oldest and "enterprise_project_id" not in oldest
    unpaid = usecases.list_seller_orders(
        world.uow, seller=SELLER, status="unpaid", page=1, page_size=10
    )
    assert [order["id"] for order in unpaid["items"]] == [first["id"]]
    one = usecases.get_seller_order(world.uow, seller=SELLER, order_id=first["id"])
    assert one == oldest


def test_another_sellers_orders_are_not_found_and_not_listed(world):
    order = world.place()
    assert (
        usecases.list_seller_orders(
            world.uow, seller=OTHER_SELLER, status=None, page=1, page_size=10
        )["total"]
        == 0
    )
    for seller, order_id in ((OTHER_SELLER, order["id"]), (SELLER, "ord_missing")):
        with pytest.raises(NotFound):
            usecases.get_seller_order(world.uow, seller=seller, order_id=order_id)


# -- cancelling --


def test_the_buyer_cancels_an_unpaid_order_but_not_a_paid_one(world):
    unpaid = world.place()
    paid, _ = world.paid_subscription()
    assert (
        usecases.cancel_order(world.uow, world.clock, buyer=BUYER, order_id=unpaid["id"])[
            "cancel_reason"
        ]
        == "cancelled by the buyer"
    )
    with pytest.raises(Conflict):
        usecases.cancel_order(world.uow, world.clock, buyer=BUYER, order_id=paid["id"])
    assert world.repository.get(paid["id"]).status == "paid"


def test_the_sweep_cancels_only_orders_past_their_window_and_not_mid_payment(world):
    due = world.place()
    paying = world.place()
    world.clock.advance(WINDOW - dt.timedelta(minutes=1))
    world.billing.next_status = "pending"  # the card gateway has not answered yet
    world.pay(paying["id"], method="credit_card")
    world.clock.advance(minutes=1)
    fresh = world.place()
    assert usecases.cancel_expired_orders(world.uow, world.clock) == 1
    statuses = {o: world.repository.get(o).status for o in (due["id"], paying["id"], fresh["id"])}
    assert statuses == {due["id"]: "cancelled", paying["id"]: "unpaid", fresh["id"]: "unpaid"}


# -- the state machine --


@pytest.mark.parametrize(
    ("move", "status"),
    [("pay", "paid"), ("pay", "cancelled"), ("cancel", "paid"), ("complete", "unpaid")],
)
def test_the_order_refuses_a_move_its_status_does_not_allow(move, status):
    with pytest.raises(Conflict, match=f"the order is {status}; {move} needs it"):
        ORDER.move(move, status)


# -- images -------------------------------------------------------------------------

DEPLOYMENT = {
    "mode": "customized",
    "flavor_id": "s6.large.2",
    "vpc_id": None,
    "subnet_id": None,
    "security_group": "recommended",
    "server_name": "web",
    "admin_password": "Secr3t!Pass",
    "data_disks": [],
    "eip": None,
    "count": 2,
}


def place_image(world: World, **changes) -> dict:
    return world.place(product_id="prd_image", deployment={**DEPLOYMENT, **changes})


def test_an_image_order_keeps_its_itemised_price_and_its_deployment(world):
    order = place_image(world)
    (line,) = order["lines"]
    assert [item["item"] for item in line["breakdown"]] == ["image", "servers"]
    assert order["amount_due"]["amount"] == (fakes.PRICE + fakes.SERVER_PRICE) * 2 * 2
    assert line["deployment_id"] == f"dep_{order['id']}"
    (prepared,) = world.provisioning.prepared
    assert prepared["deployment"]["admin_password"] == "Secr3t!Pass"
    assert prepared["image"] == fakes.IMAGE
    # the quota check never sees the password
    (checked,) = world.provisioning.checked
    assert "admin_password" not in checked["deployment"]


@pytest.mark.parametrize("error", ["AGENCY_NOT_AUTHORIZED", "AGENCY_REAUTHORIZATION_REQUIRED"])
def test_an_image_order_without_authorised_agencies_is_refused_before_anything_is_placed(
    world, error
):
    world.agencies.error = error
    with pytest.raises(Conflict) as refused:
        place_image(world)
    assert refused.value.code == error
    assert not world.repository._orders
    assert world.provisioning.prepared == [] and world.provisioning.checked == []


def test_an_image_order_over_the_accounts_quota_is_refused_naming_the_quota(world):
    world.provisioning.quota_exceeded = {"quota": "instances", "needed": 2, "available": 1}
    with pytest.raises(BusinessRuleViolation) as refused:
        place_image(world)
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert "instances quota" in refused.value.message
    assert not world.repository._orders and world.provisioning.prepared == []


def test_a_quote_prices_the_order_without_placing_it_or_asking_the_cloud(world):
    quote = usecases.quote_order(
        request={**ORDER_REQUEST, "product_id": "prd_image", "deployment": DEPLOYMENT},
        catalog=fakes.Catalog(),
    )
    assert quote["amount_due"]["amount"] == (fakes.PRICE + fakes.SERVER_PRICE) * 2 * 2
    assert [line["item"] for line in quote["lines"]] == ["image", "servers"]
    assert not world.repository._orders and world.provisioning.checked == []
