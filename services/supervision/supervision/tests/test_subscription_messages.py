"""supervision in a real container, on PostgreSQL and RabbitMQ: orders' after-purchase
events (expiring, expired, frozen, released, renewed, auto-renewal failed, upgraded,
upgrade failed, unsubscription requested, approved, rejected) each become one direct
message to the buyer, or to the seller for a request to review, however often the event
is delivered."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from mercato.clock import ManualClock
from mercato.contracts.registry import contract_for
from mercato_testing import signed_context
from mercato_testing.interface import caller, count_rows, events_consumed, publish_event, wait_for
from supervision import notices
from supervision.service import SupervisionService

pytestmark = pytest.mark.interface

NOW = dt.datetime(2026, 2, 15, 9, 0, tzinfo=dt.UTC)
BUYER = caller("acc_buyer", "buyer")
SELLER = caller("acc_seller", "seller")

HANDLERS = {
    "orders.subscription.expiring": "on_subscription_expiring",
    "orders.subscription.expired": "on_subscription_expired",
    "orders.subscription.frozen": "on_subscription_frozen",
    "orders.subscription.released": "on_subscription_released",
    "orders.subscription.renewed": "on_subscription_renewed",
    "orders.subscription.auto_renew_failed": "on_auto_renew_failed",
    "orders.subscription.upgraded": "on_subscription_upgraded",
    "orders.subscription.upgrade_failed": "on_upgrade_failed",
    "orders.unsubscription.requested": "on_unsubscription_requested",
    "orders.unsubscription.approved": "on_unsubscription_approved",
    "orders.unsubscription.rejected": "on_unsubscription_rejected",
}


@pytest.fixture
def supervision(container_factory, make_service_config):
    config = make_service_config("supervision", SUPERVISION_SWEEP_SECONDS=60)
    container = container_factory(SupervisionService, config)
    replace_dependencies(container, clock=ManualClock(NOW))
    container.start()
    return config


def messages_of(config: dict, who: dict) -> list[dict]:
    with ServiceRpcProxy(
        "supervision", config, timeout=30, context_data=signed_context(who)
    ) as service:
        return service.list_messages({"page_size": 50})["items"]


def test_every_after_purchase_event_is_one_message_to_its_reader_however_often_it_comes(
    supervision,
):
    assert set(HANDLERS) == set(notices.SUBSCRIPTION_EVENTS)
    duplicates_before = {
        t: events_consumed(f"supervision.{h}", t, "duplicate") for t, h in HANDLERS.items()
    }
    for event_type in HANDLERS:
        example = dict(contract_for(event_type).example or {})
        example.update(
            account_id=BUYER["account_id"],
            seller_account_id=SELLER["account_id"],
            subscription_id=f"sub_{uuid.uuid4().hex}",
        )
        publish_event(
            supervision["AMQP_URI"],
            event_type,
            example,
            subject=example["subscription_id"],
            times=2,  # redelivered: the inbox and the message's key keep one
        )

    buyer_messages = wait_for(
        lambda: (found := messages_of(supervision, BUYER)) and len(found) >= 10 and found,
        "the buyer's ten messages",
    )
    seller_messages = wait_for(
        lambda: messages_of(supervision, SELLER), "the seller's request to review"
    )
    wait_for(
        lambda: all(
            events_consumed(f"supervision.{h}", t, "duplicate") >= duplicates_before[t] + 1
            for t, h in HANDLERS.items()
        ),
        "every second delivery acknowledged as a repeat",
    )
    assert sorted(m["kind"] for m in buyer_messages) == sorted(
        [
            "subscription_expiring" if _stage_is_before_expiry() else "subscription_freezing_soon",
            "subscription_expired",
            "subscription_frozen",
            "subscription_released",
            "subscription_renewed",
            "auto_renew_failed",
            "subscription_upgraded",
            "upgrade_failed",
            "unsubscription_approved",
            "unsubscription_rejected",
        ]
    )
    assert [m["kind"] for m in seller_messages] == ["unsubscription_requested"]
    assert count_rows(supervision, "messages") == 11
    for message in buyer_messages + seller_messages:
        assert message["read"] is False and message["flow_id"] is None
        assert message["subject"] and message["body"]


def _stage_is_before_expiry() -> bool:
    example = contract_for("orders.subscription.expiring").example or {}
    return example.get("stage") == "before_expiry"
