"""The public request schemas refuse what API.md refuses, and keep in step with the
rules iam-agency checks again at its RPC boundary."""

import datetime as dt
import importlib

import pytest
from marshmallow import RAISE

from gateway import schemas
from gateway.web import respond
from iam_agency import schemas as iam_schemas
from mercato.errors import ValidationError
from mercato.validation import load

SIGN_UP = {
    "name": "Acme",
    "email": "ops@acme.test",
    "password": "correct horse battery",
    "type": "buyer",
}


def test_sign_up_accepts_a_complete_body():
    assert load(schemas.SignUpRequest, SIGN_UP) == SIGN_UP


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
        load(schemas.SignUpRequest, {**SIGN_UP, **change})
    assert caught.value.fields == {field: [rule]}


def test_sign_up_names_every_missing_field():
    with pytest.raises(ValidationError) as caught:
        load(schemas.SignUpRequest, {})
    assert set(caught.value.fields) == {"name", "email", "password", "type"}


def test_sign_in_refuses_unknown_fields():
    with pytest.raises(ValidationError) as caught:
        load(schemas.SignInRequest, {"email": "a@b.test", "password": "x", "otp": "1"})
    assert caught.value.fields == {"otp": ["Unknown field."]}


def rules(field) -> list:
    """A field's validators as comparable data (a tuple of choices equals a list)."""
    return [
        (type(v).__name__, {k: list(x) if isinstance(x, tuple) else x for k, x in vars(v).items()})
        for v in field.validators
    ]


@pytest.mark.parametrize(
    "public, rpc",
    [
        (schemas.SignUpRequest, iam_schemas.SignUpSchema),
        (schemas.SignInRequest, iam_schemas.CredentialsSchema),
    ],
)
def test_request_schema_matches_the_rpc_schema_it_feeds(public, rpc):
    public_fields, rpc_fields = public().fields, rpc().fields
    assert public_fields.keys() == rpc_fields.keys()
    for name, field in public_fields.items():
        other = rpc_fields[name]
        assert type(field) is type(other), name
        assert field.required == other.required, name
        assert rules(field) == rules(other), name
    assert public.Meta.unknown == RAISE


def test_response_keeps_only_documented_fields_and_renders_times():
    answer = {
        "token": "mkt_x",
        "expires_at": "2026-11-27T15:00:00+00:00",
        "internal": "not for clients",
    }
    response = respond(201, schemas.TokenResponse, answer)
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
    assert respond(200, schemas.MeResponse, answer).get_json() == {
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
CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
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
        (schemas.CreateProductRequest, PRODUCT),
        (schemas.PlaceOrderRequest, ORDER),
        (schemas.PayOrderRequest, {"payment_method": "credit_card", "card": CARD}),
        (schemas.PayOrderRequest, {"payment_method": "balance"}),
        (schemas.TopUpRequest, {"amount": {"amount": 50000, "currency": "USD"}, "card": CARD}),
        (schemas.CreditLimitRequest, {"amount": {"amount": 0, "currency": "USD"}}),
        (schemas.SellerProfileRequest, PROFILE),
        (schemas.SellerProfileRequest, {"company_name": "Acme", "email": "a@acme.test"}),
        (schemas.DelistRequest, {"reason": "Violates the rules."}),
        (schemas.SaveProductRequest, {"product_id": "prd_1"}),
        (schemas.ResellerCustomerRequest, {k: SIGN_UP[k] for k in ("name", "email", "password")}),
        (schemas.EmptyRequest, {}),
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
        load(schemas.PlaceOrderRequest, body)
    assert field in fields_of(caught)
    if rule:
        assert fields_of(caught)[field] == [rule]


def test_terms_not_accepted_is_left_to_the_business_rule_not_refused_as_input():
    """``accept_terms: false`` is well-formed: orders answers 422 TERMS_NOT_ACCEPTED."""
    assert (
        load(schemas.PlaceOrderRequest, {**ORDER, "accept_terms": False})["accept_terms"] is False
    )


def test_order_body_gets_its_defaults():
    loaded = load(schemas.PlaceOrderRequest, {k: v for k, v in ORDER.items() if k != "quantity"})
    assert loaded["quantity"] == 1
    assert loaded["enterprise_project_id"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"payment_method": "credit_card"}, "card"),
        ({"payment_method": "balance", "card": CARD}, "card"),
        ({"payment_method": "cash"}, "payment_method"),
        ({"payment_method": "credit_card", "card": {**CARD, "number": "42"}}, "card.number"),
        ({"payment_method": "credit_card", "card": {**CARD, "pin": "1"}}, "card.pin"),
        ({}, "payment_method"),
    ],
)
def test_pay_body_names_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        load(schemas.PayOrderRequest, body)
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
    ],
)
def test_top_up_takes_a_positive_money_object_and_a_card(body, field):
    with pytest.raises(ValidationError) as caught:
        load(schemas.TopUpRequest, body)
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
        load(schemas.CreditLimitRequest, body)
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
        load(schemas.CreateProductRequest, body)
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
        load(schemas.SellerProfileRequest, body)
    assert field in fields_of(caught)


def test_an_empty_body_refuses_any_field():
    with pytest.raises(ValidationError) as caught:
        load(schemas.EmptyRequest, {"reason": "changed my mind"})
    assert fields_of(caught) == {"reason": ["Unknown field."]}


# -- in step with the services' RPC schemas ------------------------------------------


def assert_same_rules(public, rpc, where=""):
    """Same fields, types, required-ness and validators, nested schemas included."""
    public_fields, rpc_fields = public().fields, rpc().fields
    assert public_fields.keys() == rpc_fields.keys(), where
    for name, field in public_fields.items():
        other = rpc_fields[name]
        at = f"{where}{name}"
        assert type(field) is type(other), at
        assert field.required == other.required, at
        assert field.allow_none == other.allow_none, at
        assert rules(field) == rules(other), at
        if hasattr(field, "nested"):
            assert_same_rules(field.nested, other.nested, f"{at}.")


@pytest.mark.parametrize(
    "public, rpc_module, rpc_name",
    [
        (schemas.ResellerCustomerRequest, "iam_agency.schemas", "ResellerCustomerSchema"),
        (schemas.PlaceOrderRequest, "orders.schemas", "PlaceOrderSchema"),
        (schemas.PayOrderRequest, "orders.schemas", "PayOrderSchema"),
        (schemas.SellerProfileRequest, "catalog.schemas", "SellerProfileSchema"),
    ],
)
def test_body_schema_has_the_rules_of_the_rpc_schema_it_feeds(public, rpc_module, rpc_name):
    rpc = getattr(importlib.import_module(rpc_module), rpc_name)
    assert_same_rules(public, rpc)


def test_product_body_has_the_fields_of_catalogs_and_refuses_at_least_what_it_refuses():
    """The gateway checks more of a product than the catalog's schema does (ranges the
    catalog's domain checks later, strict booleans), never less."""
    from catalog import schemas as catalog_schemas

    def shape(schema):
        return {
            name: (field.required, shape(field.nested) if hasattr(field, "nested") else None)
            for name, field in schema().fields.items()
        }

    def inner(field):
        return getattr(field, "inner", field)

    def list_shape(schema):
        out = {}
        for name, field in schema().fields.items():
            nested = getattr(inner(field), "nested", None)
            out[name] = (field.required, list_shape(nested) if nested else None)
        return out

    assert list_shape(schemas.CreateProductRequest) == list_shape(
        catalog_schemas.CreateProductSchema
    )
    assert shape(schemas.DelistRequest) == {"reason": (True, None)}
    assert set(catalog_schemas.DelistSchema().fields) == {"product_id", "reason"}


@pytest.mark.parametrize(
    "public, body, rpc_module, rpc_name, extra",
    [
        (schemas.CreateProductRequest, PRODUCT, "catalog.schemas", "CreateProductSchema", {}),
        (schemas.SellerProfileRequest, PROFILE, "catalog.schemas", "SellerProfileSchema", {}),
        (
            schemas.SellerProfileRequest,
            {"company_name": "Acme", "email": "a@acme.test"},
            "catalog.schemas",
            "SellerProfileSchema",
            {},
        ),
        (schemas.PlaceOrderRequest, ORDER, "orders.schemas", "PlaceOrderSchema", {}),
        (
            schemas.PlaceOrderRequest,
            {**ORDER, "billing_mode": "one_time", "period": None},
            "orders.schemas",
            "PlaceOrderSchema",
            {},
        ),
        (
            schemas.PayOrderRequest,
            {"payment_method": "credit_card", "card": CARD},
            "orders.schemas",
            "PayOrderSchema",
            {},
        ),
        (
            schemas.TopUpRequest,
            {"amount": {"amount": 50000, "currency": "USD"}, "card": CARD},
            "billing.schemas",
            "TopUpSchema",
            {"idempotency_key": "a" * 64},
        ),
    ],
)
def test_what_the_gateway_loads_the_service_accepts(public, body, rpc_module, rpc_name, extra):
    rpc = getattr(importlib.import_module(rpc_module), rpc_name)
    passed_on = {**load(public, body), **extra}
    assert rpc().load(passed_on) is not None


def test_credit_limit_amount_is_what_billing_accepts():
    from billing import schemas as billing_schemas

    amount = load(schemas.CreditLimitRequest, {"amount": {"amount": 0, "currency": "USD"}})
    billing_schemas.SetCreditLimitSchema().load({"account_id": "acc_1", **amount})


@pytest.mark.parametrize(
    "public, module, name",
    [
        (schemas.MoneyRequest, "mercato.money", "MoneySchema"),
        (schemas.PositiveMoneyRequest, "billing.schemas", "PositiveMoneySchema"),
    ],
)
def test_money_has_the_shared_rules(public, module, name):
    assert_same_rules(public, getattr(importlib.import_module(module), name))


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
    body = respond(201, schemas.OrderResponse, answer).get_json()
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
    body = respond(200, schemas.SavedProductPage, answer).get_json()
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
    assert respond(200, schemas.PurchasedAppDetailsResponse, row).get_json() == row
