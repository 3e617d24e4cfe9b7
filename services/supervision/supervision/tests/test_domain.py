"""supervision's rules without a database: who gets a flow, its steps, the freeze of an
appeal, working days."""

import datetime as dt
from types import SimpleNamespace

import pytest

from mercato.errors import Conflict
from supervision import domain
from supervision.models import Flow
from supervision.settings import Settings

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday


def _flow(kind="service", process=domain.PROCESS_2025, method="professional_service") -> Flow:
    flow = Flow(
        id="flw_1",
        order_id="ord_1",
        subscription_id="sub_1",
        buyer_account_id="acc_buyer",
        seller_account_id="acc_seller",
        product_id="prd_1",
        product_name="Migration",
        specification_name="Standard",
        delivery_method=method,
        kind=kind,
        process=process,
        step=domain.first_step(kind, process),
        open_appeal_id=None,
        paid_amount=50_000,
        currency="USD",
        paid_at=NOW,
        confirm_reminded=False,
        request_reminded=False,
        accept_notice_sent=False,
        step_changed_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    flow.started(NOW, due_by=NOW + dt.timedelta(days=3), accept_days=7)
    return flow


@pytest.mark.parametrize(
    ("method", "supervision", "supervised"),
    [
        ("license", False, True),
        ("professional_service", False, True),
        ("saas", True, True),
        ("saas", False, False),
        ("image", True, False),
    ],
)
def test_licenses_and_services_always_get_a_flow_saas_when_its_product_says(
    method, supervision, supervised
):
    assert domain.is_supervised(method, supervision) is supervised


def test_the_process_is_decided_by_when_the_order_was_paid():
    change = dt.datetime(2025, 3, 26, tzinfo=dt.UTC)
    assert domain.process_of(change - dt.timedelta(microseconds=1)) == domain.LEGACY
    assert domain.process_of(change) == domain.PROCESS_2025
    assert domain.first_step("service", domain.LEGACY) == domain.AWAITING_CONFIRMATION
    assert domain.first_step("service", domain.PROCESS_2025) == domain.AWAITING_REQUEST
    assert domain.first_step("license", domain.LEGACY) == "awaiting_acceptance"


def test_a_service_flow_walks_its_steps_and_announces_each():
    flow = _flow()
    flow.submit_request(NOW, NOW + dt.timedelta(days=3))
    flow.confirm(NOW)
    flow.provide(NOW, 7, by_seller=True)
    assert flow.accept_by == NOW + dt.timedelta(days=7)
    flow.accept(NOW, by="buyer")
    assert flow.step == "completed" and flow.accept_by is None
    assert [event.type.rsplit(".", 1)[1] for event in flow.take_events()] == [
        "started",
        "request_submitted",
        "confirmed",
        "service_provided",
        "completed",
    ]


def test_only_the_2025_process_sends_a_request_back():
    flow = _flow()
    flow.submit_request(NOW, NOW)
    flow.reject_request(NOW, NOW + dt.timedelta(days=3))
    assert flow.step == domain.AWAITING_REQUEST
    assert (flow.request_by, flow.confirm_by) == (NOW + dt.timedelta(days=3), None)
    legacy = _flow(process=domain.LEGACY)
    with pytest.raises(Conflict):
        legacy.reject_request(NOW, NOW)


def test_an_open_appeal_freezes_every_step_until_resolved():
    flow = _flow()
    flow.open_appeal_id = "apl_1"
    with pytest.raises(Conflict, match="open appeal"):
        flow.submit_request(NOW, NOW)
    flow.resume(NOW, 7)
    flow.submit_request(NOW, NOW)
    assert flow.step == domain.AWAITING_CONFIRMATION


def test_a_saas_flow_is_provided_by_its_delivery_not_by_the_seller():
    flow = _flow(method="saas")
    flow.submit_request(NOW, NOW)
    flow.confirm(NOW)
    with pytest.raises(Conflict, match="tenant"):
        flow.provide(NOW, 7, by_seller=True)
    flow.provide(NOW, 7, by_seller=False)
    assert flow.step == "awaiting_acceptance"


def test_a_license_flow_waits_for_acceptance_from_its_start():
    flow = _flow(kind="license", method="license")
    assert flow.step == "awaiting_acceptance"
    assert flow.accept_by == NOW + dt.timedelta(days=7)
    with pytest.raises(Conflict):
        flow.confirm(NOW)


def test_a_closed_or_completed_flow_moves_no_more():
    flow = _flow()
    flow.close(NOW, reason="refunded", refund=20_000)
    assert flow.step == "closed"
    (closed,) = [e for e in flow.take_events() if e.type.endswith("closed")]
    assert closed.data["refund"] == {"amount": 20_000, "currency": "USD"}
    for move in (lambda: flow.submit_request(NOW, NOW), lambda: flow.complete_on_appeal(NOW)):
        with pytest.raises(Conflict):
            move()


def test_steps_show_what_is_done_current_and_to_come():
    flow = _flow()
    records = [SimpleNamespace(step_after=domain.AWAITING_REQUEST, at=NOW)]
    view = flow.steps_view(records)
    assert [(s["name"], s["status"]) for s in view] == [
        ("awaiting_request", "current"),
        ("awaiting_confirmation", "pending"),
        ("in_service", "pending"),
        ("awaiting_acceptance", "pending"),
        ("completed", "pending"),
    ]
    legacy = _flow(process=domain.LEGACY)
    assert [s["name"] for s in legacy.steps_view([])] == [
        "awaiting_confirmation",
        "in_service",
        "awaiting_acceptance",
        "completed",
    ]


def test_working_days_skip_weekends_and_holidays():
    friday = dt.datetime(2026, 3, 6, 15, 0, tzinfo=dt.UTC)
    plain = domain.WorkingDays(lambda day: False)
    assert plain.add(friday, 1) == dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC)  # Monday
    assert plain.add(friday, 3) == dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC)
    monday_off = domain.WorkingDays(lambda day: day == dt.date(2026, 3, 9))
    assert monday_off.add(friday, 1) == dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def test_the_configured_countrys_public_holidays_are_not_working_days():
    # 2026-10-01 to 10-07 is China's National Day holiday
    working = Settings(holidays_country="CN").working_days()
    start = dt.datetime(2026, 9, 30, 10, 0, tzinfo=dt.UTC)  # a Wednesday
    assert working.add(start, 1).date() > dt.date(2026, 10, 7)
    assert Settings(holidays_country="US").working_days().add(start, 1).date() == dt.date(
        2026, 10, 1
    )


def test_settings_refuse_what_cannot_work():
    with pytest.raises(ValueError, match="SUPERVISION_AUTO_ACCEPT_DAYS"):
        Settings.from_config({"SUPERVISION_AUTO_ACCEPT_DAYS": "1"})
    with pytest.raises(NotImplementedError):  # the holidays package knows no such country
        Settings.from_config({"SUPERVISION_HOLIDAYS_COUNTRY": "XX"})
