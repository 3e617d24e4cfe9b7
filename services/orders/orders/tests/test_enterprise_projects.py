"""Enterprise projects in a real orders container on PostgreSQL and RabbitMQ: the copy of
the projects iam-agency announces (kept by revision), the rules of the project an order
names, the names shown, and moves of purchased apps between projects (all or nothing,
their events, the later renewals, upgrades and auto-renewals booked to the new project,
no deadlock with a renewal being paid)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa
from nameko.testing.services import replace_dependencies

from mercato.clock import ManualClock
from mercato.errors import BusinessRuleViolation, NotFound, ValidationError
from mercato.transport import rpc
from mercato_testing.interface import count_rows, events_consumed, publish_event, wait_for
from orders.service import OrdersService
from orders.tests import test_auto_renewal, test_upgrades
from orders.tests.test_service import (
    BUYER,
    ORDER,
    OTHER,
    SELLER,
    START,
    FakeBilling,
    FakeCatalog,
    as_caller,
    subscription_ids_of,
)

pytestmark = pytest.mark.interface

auto_renewal_orders = test_auto_renewal.orders  # fixtures of the renewals' own tests
upgrade_orders = test_upgrades.orders

EXPIRES = dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC)
MONTH = {"unit": "month", "count": 1}
ACCOUNT = BUYER["account_id"]


class FakeIam:
    """iam-agency's ``get_enterprise_project``, for BUYER's projects (``PROJECTS``),
    counting what it is asked."""

    name = "iam_agency"
    PROJECTS: dict = {}
    asked: list = []

    @rpc
    def get_enterprise_project(self, project_id):
        FakeIam.asked.append(project_id)
        if project_id not in FakeIam.PROJECTS:
            raise NotFound("no such project")
        return FakeIam.PROJECTS[project_id]


def _project(project_id, name, type_="commercial", status="enabled", revision=1) -> dict:
    return {
        "id": project_id,
        "name": name,
        "description": "",
        "type": type_,
        "status": status,
        "revision": revision,
        "created_at": START.isoformat(),
        "updated_at": START.isoformat(),
    }


@pytest.fixture
def orders(container_factory, make_service_config):
    FakeBilling.charges, FakeBilling.calls = {}, []
    FakeIam.asked = []
    FakeIam.PROJECTS = {
        "default": _project("default", "default"),
        "eps_marketing": _project("eps_marketing", "Marketing"),
        "eps_sales": _project("eps_sales", "Sales"),
        "eps_lab": _project("eps_lab", "Lab", type_="test"),
        "eps_closed": _project("eps_closed", "Closed", status="disabled", revision=2),
    }
    config = make_service_config("orders", SUBSCRIPTION_SWEEP_SECONDS=3600)
    FakeBilling.config = config
    for fake in (FakeCatalog, FakeIam, FakeBilling):
        container_factory(fake, config).start()
    container = container_factory(OrdersService, config)
    clock = ManualClock(START)
    replace_dependencies(container, clock=clock)
    container.start()
    return config, clock


def sql(config, statement: str, **params) -> list:
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(statement), params)
            return list(result.mappings().all()) if result.returns_rows else []
    finally:
        engine.dispose()


def announce(config, change: str, project_id: str, *, revision: int, times: int = 1, **fields):
    """iam-agency's ``iam_agency.enterprise_project.<change>``, waited for until orders'
    handler finished with it (``times`` deliveries of one envelope)."""
    handler = f"orders.on_enterprise_project_{change}"
    event_type = f"iam_agency.enterprise_project.{change}"
    before = sum(
        events_consumed(handler, event_type, outcome) for outcome in ("processed", "duplicate")
    )
    data = {
        "account_id": ACCOUNT,
        "enterprise_project_id": project_id,
        "name": fields.get("name", project_id),
        "description": "",
        "type": fields.get("type", "commercial"),
        "status": fields.get("status", "disabled" if change == "disabled" else "enabled"),
        "revision": revision,
        "updated_at": START + dt.timedelta(minutes=revision),
    }
    publish_event(
        config["AMQP_URI"],
        event_type,
        data,
        subject=ACCOUNT,
        times=times,
        event_id=f"evt_{uuid.uuid4().hex}",
    )
    wait_for(
        lambda: (
            sum(
                events_consumed(handler, event_type, outcome)
                for outcome in ("processed", "duplicate")
            )
            >= before + times
        ),
        f"orders to handle {event_type}",
        timeout=15,
    )


def copy_of(config, project_id: str):
    rows = sql(
        config,
        "SELECT name, type, status, revision FROM enterprise_projects "
        "WHERE account_id = :a AND project_id = :p",
        a=ACCOUNT,
        p=project_id,
    )
    return dict(rows[0]) if rows else None


def outbox(config, event_type) -> list[dict]:
    rows = sql(
        config,
        "SELECT payload FROM outbox_messages WHERE event_type = :type ORDER BY id",
        type=event_type,
    )
    return [row["payload"] for row in rows]


def bought(config, project_id="default", status="enabled", **order) -> str:
    """A paid purchase in ``project_id`` whose subscription is in ``status``."""
    with as_caller(config, BUYER) as service:
        placed = service.place_order({**ORDER, "enterprise_project_id": project_id, **order})
        service.pay_order(placed["id"], {"payment_method": "balance"})
    (subscription_id,) = subscription_ids_of(config, placed["id"])
    timed = order.get("billing_mode", "yearly_monthly") == "yearly_monthly"
    sql(
        config,
        "UPDATE subscriptions SET status = :status, expires_at = :expires WHERE id = :id",
        status=status,
        expires=EXPIRES if timed else None,
        id=subscription_id,
    )
    return subscription_id


def projects_of(config, *subscription_ids) -> list[str]:
    return [
        sql(config, "SELECT enterprise_project_id FROM subscriptions WHERE id = :id", id=one)[0][
            "enterprise_project_id"
        ]
        for one in subscription_ids
    ]


def move(config, project_id, subscription_ids, mode="with_associated", who=BUYER) -> dict:
    with as_caller(config, who) as service:
        return service.move_to_enterprise_project(
            project_id, {"subscription_ids": list(subscription_ids), "mode": mode}
        )


# -- the copy ----------------------------------------------------------------------


def test_the_copy_keeps_the_newest_revision_and_ignores_older_and_repeated_events(orders):
    config, _clock = orders
    announce(config, "created", "eps_new", revision=1, name="New")
    assert copy_of(config, "eps_new") == {
        "name": "New",
        "type": "commercial",
        "status": "enabled",
        "revision": 1,
    }
    announce(config, "disabled", "eps_new", revision=3, name="Renamed")
    announce(config, "enabled", "eps_new", revision=2, name="Older")  # arrives late
    assert copy_of(config, "eps_new") == {
        "name": "Renamed",
        "type": "commercial",
        "status": "disabled",
        "revision": 3,
    }
    # one envelope delivered twice, and another event of the same revision
    announce(config, "enabled", "eps_new", revision=3, times=2, name="Same revision")
    assert copy_of(config, "eps_new")["status"] == "disabled"
    assert copy_of(config, "eps_new")["name"] == "Renamed"
    assert count_rows(config, "enterprise_projects") == 1


def test_a_project_the_copy_lacks_is_asked_of_iam_agency_once_and_stored(orders):
    config, _clock = orders
    with as_caller(config, BUYER) as service:
        for _ in range(3):
            service.place_order({**ORDER, "enterprise_project_id": "eps_marketing"})
    assert FakeIam.asked == ["eps_marketing"]
    assert copy_of(config, "eps_marketing") == {
        "name": "Marketing",
        "type": "commercial",
        "status": "enabled",
        "revision": 1,
    }


# -- ordering rules ----------------------------------------------------------------


def test_a_disabled_project_is_refused_as_soon_as_its_event_is_in(orders):
    config, _clock = orders
    with as_caller(config, BUYER) as service:
        service.place_order({**ORDER, "enterprise_project_id": "eps_marketing"})
    announce(config, "disabled", "eps_marketing", revision=2, name="Marketing")
    with as_caller(config, BUYER) as service, pytest.raises(ValidationError) as raised:
        service.place_order({**ORDER, "enterprise_project_id": "eps_marketing"})
    assert raised.value.fields == {"enterprise_project_id": ["enterprise project is disabled"]}
    assert count_rows(config, "orders") == 1  # the refused one changed nothing
    assert FakeIam.asked == ["eps_marketing"]  # the copy answered
    announce(config, "enabled", "eps_marketing", revision=3, name="Marketing")
    with as_caller(config, BUYER) as service:
        placed = service.place_order({**ORDER, "enterprise_project_id": "eps_marketing"})
    assert placed["enterprise_project_id"] == "eps_marketing"


@pytest.mark.parametrize(
    ("project_id", "message"),
    [
        ("eps_unknown", "unknown enterprise project"),
        ("eps_closed", "enterprise project is disabled"),
    ],
)
def test_an_unknown_or_disabled_project_is_a_400_and_nothing_is_placed(orders, project_id, message):
    config, _clock = orders
    with as_caller(config, BUYER) as service, pytest.raises(ValidationError) as raised:
        service.place_order({**ORDER, "enterprise_project_id": project_id})
    assert raised.value.fields == {"enterprise_project_id": [message]}
    assert count_rows(config, "orders") == 0
    assert count_rows(config, "outbox_messages") == 0


def test_pay_per_use_orders_use_the_default_project_only(orders):
    config, _clock = orders
    pay_per_use = {**ORDER, "billing_mode": "pay_per_use", "period": None}
    with as_caller(config, BUYER) as service:
        with pytest.raises(BusinessRuleViolation) as raised:
            service.place_order({**pay_per_use, "enterprise_project_id": "eps_marketing"})
        assert raised.value.code == "ENTERPRISE_PROJECT_NOT_ALLOWED"
        assert "enterprise_project_id" in raised.value.fields
        assert count_rows(config, "orders") == 0
        placed = service.place_order(pay_per_use)
    assert placed["enterprise_project_id"] == "default"


def test_orders_and_purchased_apps_show_the_projects_name(orders):
    config, _clock = orders
    subscription_id = bought(config, "eps_marketing")
    with as_caller(config, BUYER) as service:
        (order_id,) = [order["id"] for order in service.list_orders({})["items"]]
        views = [
            service.get_order(order_id),
            service.list_orders({})["items"][0],
            service.list_orders({"status": "paid"})["items"][0],
            service.get_purchased_app(subscription_id),
            service.list_purchased_apps({})["items"][0],
        ]
    for view in views:
        assert view["enterprise_project_id"] == "eps_marketing"
        assert view["enterprise_project_name"] == "Marketing"
    # the buyer's projects are its own accounting: its sellers do not see them
    with as_caller(config, SELLER) as service:
        for view in (
            service.get_seller_order(order_id),
            service.list_seller_orders({})["items"][0],
        ):
            assert "enterprise_project_id" not in view and "enterprise_project_name" not in view
    announce(config, "disabled", "eps_marketing", revision=2, name="Marketing 2026")
    with as_caller(config, BUYER) as service:
        assert service.get_order(order_id)["enterprise_project_name"] == "Marketing 2026"


# -- moves -------------------------------------------------------------------------


def test_a_move_changes_the_project_once_and_announces_each_moved_app(orders):
    config, _clock = orders
    first, second = bought(config), bought(config)
    answer = move(config, "eps_marketing", [first, second])
    assert answer == {
        "items": [
            {"subscription_id": first, "enterprise_project_id": "eps_marketing", "moved": True},
            {"subscription_id": second, "enterprise_project_id": "eps_marketing", "moved": True},
        ]
    }
    assert projects_of(config, first, second) == ["eps_marketing", "eps_marketing"]
    again = move(config, "eps_marketing", [first], mode="independent")
    assert again["items"][0]["moved"] is False
    moved = outbox(config, "orders.subscription.moved")
    assert sorted(event["subject"] for event in moved) == sorted([first, second])
    event = next(event for event in moved if event["subject"] == first)
    assert event["data"] == {
        "subscription_id": first,
        "account_id": ACCOUNT,
        "from_enterprise_project_id": "default",
        "to_enterprise_project_id": "eps_marketing",
        "mode": "with_associated",
        "delivery_method": "saas",
        "moved_at": START.isoformat(),
    }
    with as_caller(config, BUYER) as service:
        app = service.get_purchased_app(first)
    assert (app["enterprise_project_id"], app["enterprise_project_name"]) == (
        "eps_marketing",
        "Marketing",
    )
    (moved_at,) = sql(config, "SELECT moved_at FROM subscriptions WHERE id = :id", id=first)
    assert moved_at["moved_at"] == START


@pytest.mark.parametrize(
    ("rule", "bought_as", "target"),
    [
        ("one_time", {"billing_mode": "one_time", "period": None}, "eps_marketing"),
        ("pay_per_use", {"billing_mode": "pay_per_use", "period": None}, "eps_marketing"),
        ("released", {"status": "released"}, "eps_marketing"),
        ("project_type", {"project_id": "eps_lab"}, "eps_marketing"),
    ],
)
def test_a_refused_app_moves_nothing_of_the_request(orders, rule, bought_as, target):
    config, _clock = orders
    movable = bought(config)
    refused = bought(config, **bought_as)
    before = projects_of(config, movable, refused)
    with pytest.raises(BusinessRuleViolation) as raised:
        move(config, target, [movable, refused])
    assert raised.value.code == "MOVE_NOT_ALLOWED"
    assert raised.value.fields == {"subscription_ids": [f"{rule}: {refused}"]}
    assert projects_of(config, movable, refused) == before
    assert outbox(config, "orders.subscription.moved") == []


def test_test_and_commercial_projects_exchange_nothing_either_way(orders):
    config, _clock = orders
    in_lab = bought(config, "eps_lab")
    with pytest.raises(BusinessRuleViolation) as raised:
        move(config, "default", [in_lab])
    assert raised.value.fields == {"subscription_ids": [f"project_type: {in_lab}"]}
    assert projects_of(config, in_lab) == ["eps_lab"]


def test_another_buyers_app_is_not_found_and_nothing_moves(orders):
    config, _clock = orders
    mine = bought(config)
    with as_caller(config, OTHER) as service:
        placed = service.place_order(ORDER)
        service.pay_order(placed["id"], {"payment_method": "balance"})
    (theirs,) = subscription_ids_of(config, placed["id"])
    for ids in ([mine, theirs], [mine, "sub_missing"]):
        with pytest.raises(NotFound):
            move(config, "eps_marketing", ids)
    assert projects_of(config, mine, theirs) == ["default", "default"]
    assert outbox(config, "orders.subscription.moved") == []


def test_an_unknown_target_is_404_and_a_disabled_one_400(orders):
    config, _clock = orders
    mine = bought(config)
    with pytest.raises(NotFound):
        move(config, "eps_unknown", [mine])
    with pytest.raises(ValidationError) as raised:
        move(config, "eps_closed", [mine])
    assert raised.value.fields == {"enterprise_project_id": ["enterprise project is disabled"]}
    assert projects_of(config, mine) == ["default"]


def test_a_renewal_after_a_move_is_booked_to_the_new_project(orders):
    config, clock = orders
    subscription_id = bought(config)
    with as_caller(config, BUYER) as service:
        # a renewal placed before the move, still unpaid, goes along with it
        early = service.quote_renewal(subscription_id, {"period": MONTH})
        waiting = service.place_renewal(subscription_id, {"quote_id": early["id"]})
    assert waiting["enterprise_project_id"] == "default"
    move(config, "eps_marketing", [subscription_id])
    with as_caller(config, BUYER) as service:
        paid = service.pay_order(waiting["id"], {"payment_method": "balance"})
        assert (paid["enterprise_project_id"], paid["enterprise_project_name"]) == (
            "eps_marketing",
            "Marketing",
        )
        clock.advance(hours=1)
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        later = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        service.pay_order(later["id"], {"payment_method": "balance"})
    assert later["enterprise_project_id"] == "eps_marketing"
    charged = {call["order_id"]: call["enterprise_project_id"] for call in FakeBilling.calls}
    assert charged[waiting["id"]] == charged[later["id"]] == "eps_marketing"


def test_a_move_and_a_renewal_being_paid_at_once_do_not_deadlock(orders):
    config, _clock = orders
    subscriptions = [bought(config) for _ in range(3)]
    renewals = []
    with as_caller(config, BUYER) as service:
        for subscription_id in subscriptions:
            quote = service.quote_renewal(subscription_id, {"period": MONTH})
            renewals.append(service.place_renewal(subscription_id, {"quote_id": quote["id"]}))
    outcomes: list = []

    def pay(order_id):
        with as_caller(config, BUYER) as service:
            outcomes.append(service.pay_order(order_id, {"payment_method": "balance"})["status"])

    def move_all(project_id):
        outcomes.append(move(config, project_id, reversed(subscriptions))["items"][0]["moved"])

    threads = [threading.Thread(target=pay, args=(order["id"],)) for order in renewals]
    threads += [threading.Thread(target=move_all, args=(p,)) for p in ("eps_sales", "default")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(outcomes) == 5  # nothing raised (a deadlock would be a 500 of one of them)
    assert outcomes.count("completed") == 3
    final = projects_of(config, *subscriptions)
    assert len(set(final)) == 1 and final[0] in ("eps_sales", "default")
    assert count_rows(config, "subscriptions") == 3


@contextlib.contextmanager
def held(config, table: str, row_id: str):
    """The row locked (FOR UPDATE) by a connection of the test's until the block ends."""
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id}
            )
            yield
    finally:
        engine.dispose()


def waiting_for_locks(config) -> int:
    """How many sessions on the test's database wait for a row lock."""
    (row,) = sql(
        config,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return row["n"]


def placed_while_moving(config, quote_table: str, quote_id: str, place, move_it) -> dict:
    """An order placed from a quote (``place(service)``) and a move (``move_it()``) at
    once, the move starting while the placing holds what it locks before the quote (the
    quote is held by the test until then): what each answered (or raised)."""
    outcomes: dict = {}

    def placing():
        try:
            with as_caller(config, BUYER) as service:
                outcomes["placed"] = place(service)
        except Exception as exc:  # reported by the assertions
            outcomes["placed"] = exc

    def moving():
        try:
            outcomes["moved"] = move_it()
        except Exception as exc:
            outcomes["moved"] = exc

    threads = [threading.Thread(target=placing), threading.Thread(target=moving)]
    with held(config, quote_table, quote_id):
        threads[0].start()
        wait_for(lambda: waiting_for_locks(config) >= 1, "the order to wait for its quote")
        threads[1].start()
        # the move waits for the subscription the placing locked (or, were it not
        # locked, ends before the order is placed)
        wait_for(
            lambda: not threads[1].is_alive() or waiting_for_locks(config) >= 2,
            "the move to wait for the subscription",
        )
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def project_of_order(config, order_id: str) -> str:
    (row,) = sql(config, "SELECT enterprise_project_id FROM orders WHERE id = :id", id=order_id)
    return row["enterprise_project_id"]


def test_a_renewal_placed_while_a_move_runs_is_booked_to_the_new_project(orders):
    """place_renewal locks the subscription (a renewal reading it unlocked committed its
    order to the project the move had just taken it from), and the move takes along the
    order committed while it waited for that lock."""
    config, _clock = orders
    subscription_id = bought(config)
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
    outcomes = placed_while_moving(
        config,
        "renewal_quotes",
        quote["id"],
        lambda service: service.place_renewal(subscription_id, {"quote_id": quote["id"]}),
        lambda: move(config, "eps_marketing", [subscription_id]),
    )
    placed, moved = outcomes["placed"], outcomes["moved"]
    assert moved["items"][0]["moved"] is True, moved
    assert placed["status"] == "unpaid", placed
    assert projects_of(config, subscription_id) == ["eps_marketing"]
    assert project_of_order(config, placed["id"]) == "eps_marketing"
    with as_caller(config, BUYER) as service:
        paid = service.pay_order(placed["id"], {"payment_method": "balance"})
    assert paid["enterprise_project_id"] == "eps_marketing"
    charged = {call["order_id"]: call["enterprise_project_id"] for call in FakeBilling.calls}
    assert charged[placed["id"]] == "eps_marketing"


def test_an_automatic_renewal_after_a_move_is_booked_to_the_new_project(auto_renewal_orders):
    config, clock, replicas, _events = auto_renewal_orders
    app = test_auto_renewal.enabled_subscription(config)
    test_auto_renewal.auto_renewed(config, app)
    move(config, "proj_a", [app["id"]])
    clock.set(test_auto_renewal.DUE)
    test_auto_renewal.sweep(replicas[0])
    (renewal,) = test_auto_renewal.renewal_orders(config, app["id"])
    assert renewal["status"] == "completed"
    (call,) = [
        call for call in test_auto_renewal.FakeBilling.calls if call["order_id"] == renewal["id"]
    ]
    assert call["enterprise_project_id"] == "proj_a"


def test_an_upgrade_after_a_move_is_booked_to_the_new_project(upgrade_orders):
    config, clock, _events = upgrade_orders
    app = test_upgrades.enabled_subscription(config)
    move(config, "proj_a", [app["id"]])
    clock.set(dt.datetime(2026, 12, 27, 9, 0, tzinfo=dt.UTC))
    with as_caller(config, BUYER) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
        order = service.place_upgrade(app["id"], {"quote_id": quote["id"], "accept_terms": True})
        service.pay_order(order["id"], {"payment_method": "balance"})
    assert order["enterprise_project_id"] == "proj_a"
    (row,) = sql(
        config, "SELECT enterprise_project_id, status FROM orders WHERE id = :id", id=order["id"]
    )
    assert dict(row) == {"enterprise_project_id": "proj_a", "status": "delivering"}


def test_an_upgrade_placed_while_a_move_waits_for_its_app_moves_with_it(upgrade_orders):
    """The move picks its waiting orders before it locks the subscriptions: an upgrade
    order committed while it waited for the subscription's lock is taken along too."""
    config, clock, _events = upgrade_orders
    app = test_upgrades.enabled_subscription(config)
    clock.set(dt.datetime(2026, 12, 27, 9, 0, tzinfo=dt.UTC))
    with as_caller(config, BUYER) as service:
        quote = service.quote_upgrade(app["id"], {"specification_id": "spc_pro", "quantity": 3})
    outcomes = placed_while_moving(
        config,
        "upgrade_quotes",
        quote["id"],
        lambda service: service.place_upgrade(
            app["id"], {"quote_id": quote["id"], "accept_terms": True}
        ),
        lambda: move(config, "proj_a", [app["id"]]),
    )
    placed, moved = outcomes["placed"], outcomes["moved"]
    assert moved["items"][0]["moved"] is True, moved
    assert placed["enterprise_project_id"] == "default"  # placed before the move committed
    assert project_of_order(config, placed["id"]) == "proj_a"
    with as_caller(config, BUYER) as service:
        paid = service.pay_order(placed["id"], {"payment_method": "balance"})
    assert paid["enterprise_project_id"] == "proj_a"
