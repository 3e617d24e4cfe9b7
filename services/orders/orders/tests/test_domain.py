"""Unit tests of orders' rules and input schemas."""

import datetime as dt

import pytest

from mercato.contracts.orders import PayOrderRequest, PlaceOrderRequest
from mercato.errors import ValidationError
from mercato.validation import load
from orders import domain

UTC = dt.UTC


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (dt.datetime(2026, 1, 31, 12, tzinfo=UTC), 1, dt.datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (dt.datetime(2028, 1, 31, tzinfo=UTC), 1, dt.datetime(2028, 2, 29, tzinfo=UTC)),
        (dt.datetime(2026, 11, 15, tzinfo=UTC), 3, dt.datetime(2027, 2, 15, tzinfo=UTC)),
        (dt.datetime(2026, 3, 1, tzinfo=UTC), 24, dt.datetime(2028, 3, 1, tzinfo=UTC)),
    ],
)
def test_add_months_follows_the_calendar(start, months, expected):
    assert domain.add_months(start, months) == expected


def test_yearly_monthly_subscription_runs_for_the_period_bought():
    # 23:59:59 of the day before the same calendar day N months later
    start = dt.datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert domain.subscription_expiry(start, "yearly_monthly", "month", 2) == dt.datetime(
        2027, 1, 26, 23, 59, 59, tzinfo=UTC
    )
    assert domain.subscription_expiry(start, "yearly_monthly", "year", 1) == dt.datetime(
        2027, 11, 26, 23, 59, 59, tzinfo=UTC
    )
    assert domain.subscription_expiry(start, "one_time", None, None) is None
    assert domain.subscription_expiry(start, "pay_per_use", None, None) is None


def test_unpaid_order_expires_at_its_deadline():
    deadline = dt.datetime(2026, 11, 28, tzinfo=UTC)
    assert not domain.is_expired("unpaid", deadline, deadline - dt.timedelta(seconds=1))
    assert domain.is_expired("unpaid", deadline, deadline)
    assert not domain.is_expired("paid", deadline, deadline + dt.timedelta(days=1))


BASE = {
    "product_id": "prd_1",
    "specification_id": "spc_1",
    "billing_mode": "one_time",
    "quantity": 1,
    "accept_terms": True,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"period": {"unit": "month", "count": 1}}, "period"),
        ({"billing_mode": "yearly_monthly"}, "period"),
        ({"billing_mode": "weekly"}, "billing_mode"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "3"}, "quantity"),
        ({"accept_terms": "yes"}, "accept_terms"),
        ({"colour": "red"}, "colour"),
        ({"billing_mode": "yearly_monthly", "period": {"unit": "week", "count": 1}}, "period.unit"),
    ],
)
def test_place_order_input_is_checked_field_by_field(change, field):
    with pytest.raises(ValidationError) as raised:
        load(PlaceOrderRequest, {**BASE, **change})
    assert field in raised.value.fields


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"payment_method": "credit_card"}, "card"),
        ({"payment_method": "balance", "card": {"token": "tok_4242424242424242"}}, "card"),
        (
            {
                "payment_method": "credit_card",
                "card": {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"},
            },
            "card",
        ),
        ({"payment_method": "credit_card", "card": {}}, "card.token"),
        ({"payment_method": "cash"}, "payment_method"),
    ],
)
def test_pay_input_is_checked_field_by_field(payload, field):
    with pytest.raises(ValidationError) as raised:
        load(PayOrderRequest, payload)
    assert field in raised.value.fields
