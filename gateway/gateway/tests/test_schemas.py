"""The public bodies refuse what docs/api.md says they refuse. Each is the schema of the RPC behind its
route (``mercato.contracts``): the gateway loads a body with it, and the service loads
what the gateway passes on with it again."""

import datetime as dt

import pytest

from gateway.schemas import PurchasedAppDetailsResponse
from gateway.web import respond
from mercato.contracts import billing, catalog, iam_agency, orders
from mercato.contracts.common import EmptyRequest
from mercato.errors import ValidationError
from mercato.validation import load

SIGN_UP = {
    "name": "Acme",
    "email": "ops@acme.test",
    "password": "correct horse battery",
    "type": "buyer",
}


def test_sign_up_accepts_a_complete_body():
    assert load(iam_agency.SignUpRequest, SIGN_UP) == SIGN_UP


@pytest.mark.parametrize(
    "change, field, rule",
    [
        ({"colour": "red"}, "colour", "Unknown field."),
        ({"name": 42}, "name", "Not a valid string."),
        ({"email": "not-an-email"}, "email", "Not a valid email address."),
        ({"password": "short"}, "password", "must be 10 to 128 characters"),
        ({"type": "operator"}, "type", "Must be one of: buyer, seller, reseller."),
        ({"type": None}, "type", "Field may not be null."),
    ],
)
def test_sign_up_names_the_field_and_the_rule_it_broke(change, field, rule):
    with pytest.raises(ValidationError) as caught:
        load(iam_agency.SignUpRequest, {**SIGN_UP, **change})
    assert caught.value.fields == {field: [rule]}


def test_sign_up_names_every_missing_field():
    with pytest.raises(ValidationError) as caught:
        load(iam_agency.SignUpRequest, {})
    assert set(caught.value.fields) == {"name", "email", "password", "type"}


def test_sign_in_refuses_unknown_fields():
    with pytest.raises(ValidationError) as caught:
        load(iam_agency.SignInRequest, {"email": "a@b.test", "password": "x", "otp": "1"})
    assert caught.value.fields == {"otp": ["Unknown field."]}


def test_response_keeps_only_documented_fields_and_renders_times():
    answer = {
        "token": "mkt_x",
        "expires_at": "2026-11-27T15:00:00+00:00",
        "internal": "not for clients",
    }
    response = respond(201, iam_agency.TokenResponse, answer)
    assert response.status_code == 201
    assert response.get_json() == {"token": "mkt_x", "expires_at": "2026-11-27T15:00:00+00:00"}
    expires = dt.datetime.fromisoformat(response.get_json()["expires_at"])
    assert expires.utcoffset() == dt.timedelta(0)


def test_me_response_nests_account_and_user():
    answer = {
        "account": {"id": "acc_1", "name": "Acme", "type": "buyer", "reseller": None},
        "user": {"id": "usr_1", "email": "ops@acme.test"},
        "roles": ["buyer"],
    }
    assert respond(200, iam_agency.MeResponse, answer).get_json() == {
        "account": {"id": "acc_1", "name": "Acme", "type": "buyer"},
        "user": {"id": "usr_1", "email": "ops@acme.test"},
        "roles": ["buyer"],
    }


# -- the marketplace's bodies --------------------------------------------------------

PRODUCT = {
    "name": "Acme Backup for ECS",
    "summary": "Incremental backups of cloud servers.",
    "description": "Backs up ECS disks every hour.",
    "category": "storage",
    "delivery_method": "saas",
    "service_supervision": False,
    "product_guide_url": "https://acme.test/guide",
    "terms": "Use it well.",
    "specifications": [
        {
            "name": "Standard",
            "prices": [
                {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 1500},
                {"billing_mode": "pay_per_use", "period_unit": "hour", "amount": 3},
                {"billing_mode": "one_time", "amount": 90000},
            ],
            "quantity": {"name": "servers", "min": 1, "max": 100},
        }
    ],
}
ORDER = {
    "product_id": "prd_1",
    "specification_id": "spc_1",
    "billing_mode": "yearly_monthly",
    "period": {"unit": "month", "count": 3},
    "quantity": 2,
    "accept_terms": True,
}
CARD = {"token": "tok_4c1f0e9a2b3d4e5f6a7b8c9d0e1f2a3b"}
RAW_CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
PROFILE = {
    "company_name": "Acme Ltd",
    "email": "help@acme.test",
    "mobile": "+86 755 2878 0808",
    "support_range": "24x7",
    "currency": "USD",
}


def fields_of(error: pytest.ExceptionInfo) -> dict:
    return error.value.fields


def names(error: pytest.ExceptionInfo, field: str) -> bool:
    """The error names ``field`` (or a part of it: a non-object given for a nested
    object is ``<field>._schema``)."""
    return any(name == field or name.startswith(f"{field}.") for name in fields_of(error))


@pytest.mark.parametrize(
    "schema, body",
    [
        (catalog.CreateProductRequest, PRODUCT),
        (orders.PlaceOrderRequest, ORDER),
        (orders.PayOrderRequest, {"payment_method": "credit_card", "card": CARD}),
        (orders.PayOrderRequest, {"payment_method": "balance"}),
        (billing.TopUpRequest, {"amount": {"amount": 50000, "currency": "USD"}, "card": CARD}),
        (billing.CreditLimitRequest, {"amount": {"amount": 0, "currency": "USD"}}),
        (catalog.SellerProfileRequest, PROFILE),
        (catalog.SellerProfileRequest, {"company_name": "Acme", "email": "a@acme.test"}),
        (catalog.DelistRequest, {"reason": "Violates the rules."}),
        (catalog.SaveProductRequest, {"product_id": "prd_1"}),
        (
            iam_agency.ResellerCustomerRequest,
            {k: SIGN_UP[k] for k in ("name", "email", "password")},
        ),
        (EmptyRequest, {}),
    ],
)
def test_a_complete_body_is_accepted(schema, body):
    load(schema, body)


@pytest.mark.parametrize(
    "body, field, rule",
    [
        ({**ORDER, "colour": "red"}, "colour", "Unknown field."),
        ({**ORDER, "quantity": "2"}, "quantity", "Not a valid integer."),
        ({**ORDER, "quantity": 0}, "quantity", "Must be greater than or equal to 1."),
        ({**ORDER, "accept_terms": "yes"}, "accept_terms", None),
        ({**ORDER, "billing_mode": "weekly"}, "billing_mode", None),
        ({**ORDER, "period": None}, "period", "required for the yearly_monthly billing mode"),
        (
            {**ORDER, "billing_mode": "one_time"},
            "period",
            "only the yearly_monthly billing mode takes a period",
        ),
        ({**ORDER, "period": {"unit": "week", "count": 1}}, "period.unit", None),
        ({**ORDER, "period": {"unit": "month", "count": 1.5}}, "period.count", None),
    ],
)
def test_order_body_names_the_field_and_the_rule_it_broke(body, field, rule):
    with pytest.raises(ValidationError) as caught:
        load(orders.PlaceOrderRequest, body)
    assert field in fields_of(caught)
    if rule:
        assert fields_of(caught)[field] == [rule]


def test_terms_not_accepted_is_left_to_the_business_rule_not_refused_as_input():
    """``accept_terms: false`` is well-formed: orders answers 422 TERMS_NOT_ACCEPTED."""
    assert load(orders.PlaceOrderRequest, {**ORDER, "accept_terms": False})["accept_terms"] is False


def test_order_body_gets_its_defaults():
    loaded = load(orders.PlaceOrderRequest, {k: v for k, v in ORDER.items() if k != "quantity"})
    assert loaded["quantity"] == 1
    assert loaded["enterprise_project_id"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"payment_method": "credit_card"}, "card"),
        ({"payment_method": "balance", "card": CARD}, "card"),
        ({"payment_method": "cash"}, "payment_method"),
        ({"payment_method": "credit_card", "card": RAW_CARD}, "card"),
        ({"payment_method": "credit_card", "card": {**CARD, "cvc": "123"}}, "card"),
        ({"payment_method": "credit_card", "card": {**CARD, "pin": "1"}}, "card.pin"),
        ({"payment_method": "credit_card", "card": {}}, "card.token"),
        ({"payment_method": "credit_card", "card": {**CARD, "card_id": "card_1"}}, "card.card_id"),
        ({}, "payment_method"),
    ],
)
def test_pay_body_names_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        load(orders.PayOrderRequest, body)
    assert field in fields_of(caught)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount": 50000, "card": CARD}, "amount"),  # money is an object, not a number
        ({"amount": {"amount": 0, "currency": "USD"}, "card": CARD}, "amount.amount"),
        ({"amount": {"amount": 10.5, "currency": "USD"}, "card": CARD}, "amount.amount"),
        ({"amount": {"amount": "100", "currency": "USD"}, "card": CARD}, "amount.amount"),
        ({"amount": {"amount": 100, "currency": "usd"}, "card": CARD}, "amount.currency"),
        ({"amount": {"amount": 100}, "card": CARD}, "amount.currency"),
        ({"amount": {"amount": 100, "currency": "USD", "x": 1}, "card": CARD}, "amount.x"),
        ({"amount": {"amount": 100, "currency": "USD"}}, "card"),
        ({"amount": {"amount": 100, "currency": "USD"}, "card": RAW_CARD}, "card"),
    ],
)
def test_top_up_takes_a_positive_money_object_and_a_card(body, field):
    with pytest.raises(ValidationError) as caught:
        load(billing.TopUpRequest, body)
    assert names(caught, field)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount": 1000}, "amount"),
        ({"amount": {"amount": -1, "currency": "USD"}}, "amount.amount"),
        ({"amount": {"amount": 10**14, "currency": "USD"}}, "amount.amount"),
        ({}, "amount"),
    ],
)
def test_credit_limit_takes_a_money_object_of_zero_or_more(body, field):
    with pytest.raises(ValidationError) as caught:
        load(billing.CreditLimitRequest, body)
    assert names(caught, field)


def product_with(**changes) -> dict:
    return {**PRODUCT, **changes}


def spec_with(**changes) -> dict:
    return {**PRODUCT["specifications"][0], **changes}


@pytest.mark.parametrize(
    "body, field",
    [
        (product_with(delivery_method="email"), "delivery_method"),
        (product_with(service_supervision="no"), "service_supervision"),
        (product_with(product_guide_url="ftp://acme.test/guide"), "product_guide_url"),
        (product_with(specifications=[]), "specifications"),
        (product_with(name=""), "name"),
        (product_with(terms=None), "terms"),
        (
            product_with(specifications=[spec_with(prices=[{"billing_mode": "one_time"}])]),
            "specifications.0.prices.0.amount",
        ),
        (
            product_with(
                specifications=[spec_with(prices=[{"billing_mode": "one_time", "amount": -1}])]
            ),
            "specifications.0.prices.0.amount",
        ),
        (
            product_with(
                specifications=[
                    spec_with(prices=[{"billing_mode": "one_time", "amount": {"amount": 1}}])
                ]
            ),
            "specifications.0.prices.0.amount",
        ),
        (
            product_with(specifications=[spec_with(quantity={"name": "u", "min": 0, "max": 5})]),
            "specifications.0.quantity.min",
        ),
        (product_with(specifications=[spec_with(colour="red")]), "specifications.0.colour"),
    ],
)
def test_product_body_names_the_nested_field(body, field):
    with pytest.raises(ValidationError) as caught:
        load(catalog.CreateProductRequest, body)
    assert field in fields_of(caught)


@pytest.mark.parametrize(
    "body, field",
    [
        ({**PROFILE, "email": "nope"}, "email"),
        ({**PROFILE, "mobile": "call me"}, "mobile"),
        ({**PROFILE, "currency": "dollars"}, "currency"),
        ({**PROFILE, "logo": "x"}, "logo"),
        ({"email": "a@acme.test"}, "company_name"),
    ],
)
def test_seller_profile_names_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        load(catalog.SellerProfileRequest, body)
    assert field in fields_of(caught)


def test_an_empty_body_refuses_any_field():
    with pytest.raises(ValidationError) as caught:
        load(EmptyRequest, {"reason": "changed my mind"})
    assert fields_of(caught) == {"reason": ["Unknown field."]}


# -- what the service loads again ------------------------------------------------------


@pytest.mark.parametrize(
    "schema, body",
    [
        (catalog.CreateProductRequest, PRODUCT),
        (catalog.SellerProfileRequest, PROFILE),
        (catalog.SellerProfileRequest, {"company_name": "Acme", "email": "a@acme.test"}),
        (orders.PlaceOrderRequest, ORDER),
        (orders.PlaceOrderRequest, {**ORDER, "billing_mode": "one_time", "period": None}),
        (orders.PayOrderRequest, {"payment_method": "credit_card", "card": CARD}),
        (orders.PayOrderRequest, {"payment_method": "credit_card", "card": {"card_id": "card_1"}}),
        (billing.BindCardRequest, {"token": "tok_1"}),
        (billing.CreditLimitRequest, {"amount": {"amount": 0, "currency": "USD"}}),
        (iam_agency.SignUpRequest, SIGN_UP),
    ],
)
def test_what_the_gateway_passes_on_the_service_loads_to_the_same(schema, body):
    passed_on = load(schema, body)
    assert load(schema, passed_on) == passed_on


def test_a_top_up_passed_on_with_the_requests_key_is_what_billing_takes():
    body = load(
        billing.TopUpRequest, {"amount": {"amount": 50000, "currency": "USD"}, "card": CARD}
    )
    passed_on = {**body, "idempotency_key": "a" * 64}
    assert load(billing.TopUpPayload, passed_on) == passed_on


def test_a_top_up_body_may_not_carry_its_own_idempotency_key():
    with pytest.raises(ValidationError) as caught:
        load(
            billing.TopUpRequest,
            {"amount": {"amount": 500, "currency": "USD"}, "card": CARD, "idempotency_key": "k"},
        )
    assert fields_of(caught) == {"idempotency_key": ["Unknown field."]}


# -- answers ------------------------------------------------------------------------


def test_order_answer_keeps_nulls_and_money_and_drops_the_unknown():
    answer = {
        "id": "ord_1",
        "status": "unpaid",
        "account_id": "acc_1",
        "paid_by_reseller": False,
        "enterprise_project_id": "default",
        "amount_due": {"amount": 9000, "currency": "USD"},
        "lines": [
            {
                "id": "oln_1",
                "product_id": "prd_1",
                "product_name": "Acme",
                "seller_account_id": "acc_s",
                "specification_id": "spc_1",
                "specification_name": "Standard",
                "delivery_method": "saas",
                "service_supervision": False,
                "billing_mode": "one_time",
                "period": None,
                "quantity": 1,
                "unit_price": {"amount": 9000, "currency": "USD"},
                "amount": {"amount": 9000, "currency": "USD"},
                "internal": "x",
            }
        ],
        "payment_deadline": "2026-11-28T03:00:00+00:00",
        "payment_method": None,
        "paid_at": None,
        "cancel_reason": None,
        "failure_reason": None,
        "created_at": "2026-11-27T03:00:00+00:00",
        "updated_at": "2026-11-27T03:00:00+00:00",
        "payer_account_id": "acc_1",
    }
    body = respond(201, orders.OrderResponse, answer).get_json()
    expected = {k: v for k, v in answer.items() if k != "payer_account_id"}
    expected["lines"] = [{k: v for k, v in answer["lines"][0].items() if k != "internal"}]
    assert body == expected


def test_a_page_answers_items_total_page_and_page_size():
    answer = {
        "items": [{"product_id": "prd_1", "saved_at": "2026-11-27T03:00:00+00:00"}],
        "total": 1,
        "page": 1,
        "page_size": 20,
    }
    body = respond(200, catalog.SavedProductPage, answer).get_json()
    assert body == answer


def test_purchased_app_details_answer_what_orders_has_today():
    row = {
        "id": "sub_1",
        "order_id": "ord_1",
        "product_id": "prd_1",
        "product_name": "Acme",
        "specification_name": "Standard",
        "delivery_method": "saas",
        "status": "enabling",
        "expires_at": None,
        "billing_mode": "one_time",
        "auto_renew": False,
        "enterprise_project_id": "default",
        "created_at": "2026-11-27T03:00:00+00:00",
    }
    assert respond(200, PurchasedAppDetailsResponse, row).get_json() == row
