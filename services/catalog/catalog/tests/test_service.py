"""The catalog in a real container, on PostgreSQL and RabbitMQ: every RPC through the
bus, acting as sellers, buyers and operators (search on both backends is in
test_search.py)."""

import datetime as dt
import uuid

import pytest

from catalog.tests.support import (
    BUYER,
    OPERATOR,
    OTHER_BUYER,
    OTHER_SELLER,
    SAAS_ENDPOINT,
    SELLER,
    list_product,
    product_payload,
    quote_of,
    rpc,
    seller_email,
    set_up_seller,
)
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationError,
)
from mercato.identity import Identity
from mercato_testing.interface import (
    EventQueue,
    count_rows,
    events_consumed,
    publish_event,
    wait_for,
)

pytestmark = pytest.mark.interface

ACCOUNT_CREATED = "iam_agency.account.created"


@pytest.fixture
def seller(catalog):
    """The catalog with SELLER's profile set up: ``(config, clock)``."""
    config, clock = catalog
    set_up_seller(config, SELLER, company_name="Acme Cloud Ltd")
    return config, clock


# -- creating and publishing --------------------------------------------------------


def test_seller_creates_a_draft_with_specification_ids_then_publishes_it(seller):
    config, clock = seller
    with rpc(config, SELLER) as catalog:
        draft = catalog.create_product(product_payload())
        clock.advance(minutes=5)
        published = catalog.publish_product(draft["id"])

    assert draft["id"].startswith("prd_") and draft["status"] == "draft"
    assert draft["published_at"] is None
    [specification] = draft["specifications"]
    assert specification["id"].startswith("spc_")
    assert specification["quantity"] == {"name": "users", "min": 1, "max": 1000}
    assert specification["prices"] == [
        {
            "billing_mode": "yearly_monthly",
            "period_unit": "month",
            "price": {"amount": 1500, "currency": "USD"},
        },
        {
            "billing_mode": "yearly_monthly",
            "period_unit": "year",
            "price": {"amount": 15000, "currency": "USD"},
        },
        {
            "billing_mode": "pay_per_use",
            "period_unit": "hour",
            "price": {"amount": 3, "currency": "USD"},
        },
        {
            "billing_mode": "one_time",
            "period_unit": None,
            "price": {"amount": 90000, "currency": "USD"},
        },
    ]
    assert draft["lowest_price"] == {"amount": 3, "currency": "USD"}
    assert draft["billing_modes"] == ["yearly_monthly", "pay_per_use", "one_time"]

    assert published["status"] == "published"
    assert dt.datetime.fromisoformat(published["published_at"]) == dt.datetime(
        2026, 11, 27, 9, 5, tzinfo=dt.UTC
    )
    with rpc(config) as anyone:
        details = anyone.get_product(draft["id"])
    assert details["seller"] == {
        "id": SELLER.account_id,
        "company_name": "Acme Cloud Ltd",
        "email": seller_email(SELLER),
        "mobile": "+86 755 2878 0808",
        "support_range": "Mon-Fri 09:00-18:00 UTC+8",
    }
    assert details["terms"] == "Acme terms of service."
    assert details["specifications"] == published["specifications"] == draft["specifications"]
    assert draft["saas_endpoint_url"] == published["saas_endpoint_url"] == SAAS_ENDPOINT
    assert "saas_endpoint_url" not in details


def test_publishing_announces_the_product_to_subscribers(seller):
    config, _clock = seller
    queue = EventQueue(config["AMQP_URI"], "catalog", "catalog.product.published")
    try:
        product = list_product(config, name="Acme Vault", category="security")
        envelope = queue.next()
    finally:
        queue.close()
    assert envelope["type"] == "catalog.product.published" and envelope["version"] == 1
    assert envelope["source"] == "catalog"
    assert envelope["subject"] == product["id"]
    assert envelope["account_id"] == SELLER.account_id
    assert envelope["data"] == {
        "product_id": product["id"],
        "seller_account_id": SELLER.account_id,
        "name": "Acme Vault",
        "delivery_method": "saas",
        "category": "security",
        "status": "published",
        "lowest_price": {"amount": 3, "currency": "USD"},
    }


def test_a_draft_is_seen_only_by_its_seller_and_operators(seller):
    config, _clock = seller
    set_up_seller(config, OTHER_SELLER)
    draft = list_product(config, publish=False)
    for who in (None, BUYER, OTHER_SELLER):
        with rpc(config, who) as catalog, pytest.raises(NotFound):
            catalog.get_product(draft["id"])
    for who in (SELLER, OPERATOR):
        with rpc(config, who) as catalog:
            assert catalog.get_product(draft["id"])["status"] == "draft"
    with rpc(config) as anyone:
        assert anyone.search_products({"q": "Acme Backup"})["total"] == 0


def test_another_seller_cannot_publish_your_product(seller):
    config, _clock = seller
    set_up_seller(config, OTHER_SELLER)
    draft = list_product(config, publish=False)
    with rpc(config, OTHER_SELLER) as catalog, pytest.raises(NotFound):
        catalog.publish_product(draft["id"])
    with rpc(config, SELLER) as catalog:
        assert catalog.get_product(draft["id"])["status"] == "draft"


def test_only_a_draft_can_be_published(seller):
    config, _clock = seller
    product = list_product(config)
    with rpc(config, SELLER) as catalog, pytest.raises(Conflict) as raised:
        catalog.publish_product(product["id"])
    assert raised.value.code == "CONFLICT"


@pytest.mark.parametrize(
    ("who", "error"),
    [(None, Unauthenticated), (BUYER, Forbidden), (OPERATOR, Forbidden)],
)
def test_only_sellers_create_products(seller, who, error):
    config, _clock = seller
    with rpc(config, who) as catalog:
        with pytest.raises(error):
            catalog.create_product(product_payload())
        with pytest.raises(error):
            catalog.list_seller_products()
    assert count_rows(config, "products") == 0


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"specifications": []}, {"specifications": ["must have at least one specification"]}),
        (
            {"specifications": [{"name": "S", "prices": []}]},
            {"specifications.0.prices": ["must have at least one price"]},
        ),
        (
            {
                "specifications": [
                    {
                        "name": "S",
                        "prices": [
                            {"billing_mode": "pay_per_use", "period_unit": "hour", "amount": 5},
                            {"billing_mode": "pay_per_use", "period_unit": "hour", "amount": 6},
                        ],
                    }
                ]
            },
            {
                "specifications.0.prices.1": [
                    "another price of this specification has the same billing_mode and period_unit"
                ]
            },
        ),
        (
            {
                "specifications": [
                    {
                        "name": "S",
                        "prices": [
                            {"billing_mode": "yearly_monthly", "period_unit": "hour", "amount": 5}
                        ],
                    }
                ]
            },
            {"specifications.0.prices.0.period_unit": ["must be month or year for yearly_monthly"]},
        ),
        (
            {
                "specifications": [
                    {"name": "S", "prices": [{"billing_mode": "one_time", "amount": -1}]}
                ]
            },
            {"specifications.0.prices.0.amount": ["must be between 0 and 100000000000"]},
        ),
        (
            {
                "specifications": [
                    {
                        "name": "S",
                        "prices": [{"billing_mode": "one_time", "amount": 1}],
                        "quantity": {"name": "users", "min": 10, "max": 5},
                    }
                ]
            },
            {"specifications.0.quantity.max": ["must not be less than min"]},
        ),
        ({"product_guide_url": "javascript:alert(1)"}, {"product_guide_url": ["Not a valid URL."]}),
        ({"service_supervision": None}, {"service_supervision": ["Field may not be null."]}),
    ],
)
def test_a_product_breaking_a_rule_is_refused_naming_the_field_and_nothing_is_saved(
    seller, overrides, fields
):
    config, _clock = seller
    with rpc(config, SELLER) as catalog:
        with pytest.raises(ValidationError) as raised:
            catalog.create_product(product_payload(**overrides))
        assert raised.value.fields == fields
        assert raised.value.code == "VALIDATION_ERROR"
        assert catalog.list_seller_products()["total"] == 0
    assert count_rows(config, "specifications") == 0


@pytest.mark.parametrize("method", ["license", "professional_service"])
def test_an_unsupervised_license_or_professional_service_is_refused(seller, method):
    config, _clock = seller
    with rpc(config, SELLER) as catalog:
        with pytest.raises(ValidationError) as raised:
            catalog.create_product(
                product_payload(delivery_method=method, service_supervision=False)
            )
        assert list(raised.value.fields) == ["service_supervision"]
        assert catalog.list_seller_products()["total"] == 0
        supervised = catalog.create_product(
            product_payload(delivery_method=method, service_supervision=True)
        )
    assert supervised["service_supervision"] is True
    assert count_rows(config, "products") == 1


def test_a_seller_without_a_profile_is_told_to_set_one_up(catalog):
    config, _clock = catalog
    with rpc(config, SELLER) as service, pytest.raises(BusinessRuleViolation) as raised:
        service.create_product(product_payload())
    assert raised.value.code == "SELLER_PROFILE_REQUIRED"


# -- a saas product's endpoint ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://saas.acme.example.com/mercato?region=eu",
        "http://127.0.0.1:8300/saas",
        "http://[::1]:8300/saas",
        "http://localhost:8300/saas",
    ],
)
def test_a_saas_product_keeps_an_https_or_loopback_endpoint_for_its_seller(seller, url):
    config, _clock = seller
    with rpc(config, SELLER) as catalog:
        draft = catalog.create_product(product_payload(saas_endpoint_url=url))
        published = catalog.publish_product(draft["id"])
        [row] = catalog.list_seller_products()["items"]
    assert draft["saas_endpoint_url"] == published["saas_endpoint_url"] == url
    assert row["saas_endpoint_url"] == url
    with rpc(config) as provisioning:
        assert provisioning.delivery_settings(draft["id"])["saas_endpoint_url"] == url


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"saas_endpoint_url": "http://saas.acme.example.com/mercato"}, "loopback"),
        ({"saas_endpoint_url": "http://192.168.1.20:8300/saas"}, "loopback"),
        ({"saas_endpoint_url": "ftp://saas.acme.example.com/"}, "https"),
        ({"saas_endpoint_url": "/saas"}, "https"),
        ({"saas_endpoint_url": "https://ak:secret@saas.acme.example.com/"}, "credentials"),
        (
            {"delivery_method": "license", "saas_endpoint_url": SAAS_ENDPOINT},
            "only a saas product has an endpoint",
        ),
        (
            {"delivery_method": "image", "saas_endpoint_url": "http://127.0.0.1:8300/saas"},
            "only a saas product has an endpoint",
        ),
    ],
)
def test_an_endpoint_mercato_must_not_call_is_refused_naming_the_field(seller, overrides, rule):
    config, _clock = seller
    with rpc(config, SELLER) as catalog, pytest.raises(ValidationError) as raised:
        catalog.create_product(product_payload(**overrides))
    assert list(raised.value.fields) == ["saas_endpoint_url"]
    [message] = raised.value.fields["saas_endpoint_url"]
    assert rule in message
    assert count_rows(config, "products") == 0


def test_a_product_of_another_delivery_method_has_no_endpoint(seller):
    config, _clock = seller
    product = list_product(config, delivery_method="license")
    assert product["saas_endpoint_url"] is None
    with rpc(config) as provisioning:
        settings = provisioning.delivery_settings(product["id"])
    assert (settings["delivery_method"], settings["saas_endpoint_url"]) == ("license", None)


def test_a_saas_product_without_an_endpoint_stays_a_draft(seller):
    config, _clock = seller
    draft = list_product(config, publish=False, saas_endpoint_url=None)
    assert draft["saas_endpoint_url"] is None
    with rpc(config, SELLER) as catalog:
        with pytest.raises(BusinessRuleViolation) as raised:
            catalog.publish_product(draft["id"])
        after = catalog.get_product(draft["id"])
    assert raised.value.code == "SAAS_ENDPOINT_REQUIRED"
    assert "saas_endpoint_url" in raised.value.message
    assert (after["status"], after["published_at"]) == ("draft", None)
    assert after["updated_at"] == draft["updated_at"]
    assert count_rows(config, "outbox_messages") == 0
    with rpc(config) as anyone:
        assert anyone.search_products({})["total"] == 0


def test_no_buyer_facing_view_shows_the_endpoint(seller):
    config, _clock = seller
    product = list_product(config)
    with rpc(config, BUYER) as buyer:
        views = [
            buyer.get_product(product["id"]),
            buyer.search_products({})["items"][0],
            buyer.quote(quote_of(product)),
        ]
        buyer.save_product({"product_id": product["id"]})
        views.append(buyer.list_saved_products()["items"][0])
    # its seller and operators read the product page too: the gateway caches that answer
    for who in (SELLER, OPERATOR, None):
        with rpc(config, who) as catalog:
            views.append(catalog.get_product(product["id"]))
    with rpc(config, OPERATOR) as operator:
        views.append(operator.delist_product(product["id"], {"reason": "retired"}))
    for view in views:
        assert SAAS_ENDPOINT not in repr(view), view


# -- delivery settings ---------------------------------------------------------------


def test_delivery_settings_answer_what_provisioning_needs_even_once_delisted(seller):
    config, _clock = seller
    product = list_product(config, service_supervision=False)
    expected = {
        "product_id": product["id"],
        "seller_account_id": SELLER.account_id,
        "delivery_method": "saas",
        "service_supervision": False,
        "saas_endpoint_url": SAAS_ENDPOINT,
        "product_guide_url": "https://docs.acme.example.com/backup/guide",
        "seller": {
            "company_name": "Acme Cloud Ltd",
            "email": seller_email(SELLER),
            "mobile": "+86 755 2878 0808",
        },
    }
    # provisioning's event handlers carry the buyer's identity, or none
    for who in (None, BUYER):
        with rpc(config, who) as provisioning:
            assert provisioning.delivery_settings(product["id"]) == expected
    with rpc(config, OPERATOR) as operator:
        operator.delist_product(product["id"], {"reason": "retired"})
    with rpc(config) as provisioning:
        assert provisioning.delivery_settings(product["id"]) == expected


def test_delivery_settings_of_an_unknown_product_or_a_draft_are_not_found(seller):
    config, _clock = seller
    draft = list_product(config, publish=False)
    with rpc(config) as provisioning:
        for missing in ("prd_missing", draft["id"]):
            with pytest.raises(NotFound):
                provisioning.delivery_settings(missing)
        with pytest.raises(ValidationError):
            provisioning.delivery_settings("")


# -- request templates ----------------------------------------------------------------


def test_a_seller_sets_its_products_request_template_for_supervision_to_read(seller):
    config, clock = seller
    product = list_product(config)
    template = "Company name:\nContact person:\n" + "x" * (5_000 - 30)
    assert len(template) == 5_000
    with rpc(config) as supervision:
        assert supervision.get_request_template(product["id"]) == {
            "product_id": product["id"],
            "template": None,
        }
    clock.advance(minutes=1)
    with rpc(config, SELLER) as catalog:
        answer = catalog.set_request_template(product["id"], {"template": template})
        [row] = catalog.list_seller_products()["items"]
    assert answer == {"product_id": product["id"], "template": template}
    assert row["request_template"] == template
    assert row["updated_at"] == "2026-11-27T09:01:00+00:00"
    # supervision asks in a buyer's request, or in an event handler with no caller
    for who in (None, BUYER):
        with rpc(config, who) as supervision:
            assert supervision.get_request_template(product["id"]) == answer
    with rpc(config, BUYER) as buyer:
        assert "request_template" not in buyer.get_product(product["id"])
    with rpc(config, SELLER) as catalog:
        removed = catalog.set_request_template(product["id"], {"template": ""})
    assert removed == {"product_id": product["id"], "template": None}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"template": "x" * 5_001}, "template"),
        ({"template": None}, "template"),
        ({"template": 42}, "template"),
        ({}, "template"),
        ({"template": "ok", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_request_template_is_refused_naming_the_field_and_changes_nothing(
    seller, payload, field
):
    config, _clock = seller
    product = list_product(config)
    with rpc(config, SELLER) as catalog:
        catalog.set_request_template(product["id"], {"template": "kept"})
        with pytest.raises(ValidationError) as raised:
            catalog.set_request_template(product["id"], payload)
    assert list(raised.value.fields) == [field]
    with rpc(config) as supervision:
        assert supervision.get_request_template(product["id"])["template"] == "kept"


def test_only_its_seller_sets_a_products_template_and_a_draft_has_none_for_others(seller):
    config, _clock = seller
    set_up_seller(config, OTHER_SELLER)
    draft = list_product(config, publish=False)
    with rpc(config, SELLER) as catalog:
        catalog.set_request_template(draft["id"], {"template": "Which region?"})
        published = catalog.publish_product(draft["id"])
    assert published["request_template"] == "Which region?"
    with rpc(config, OTHER_SELLER) as other, pytest.raises(NotFound):
        other.set_request_template(draft["id"], {"template": "mine now"})
    with rpc(config, BUYER) as buyer, pytest.raises(Forbidden):
        buyer.set_request_template(draft["id"], {"template": "mine now"})
    with rpc(config) as anonymous, pytest.raises(Unauthenticated):
        anonymous.set_request_template(draft["id"], {"template": "mine now"})
    with rpc(config) as supervision:
        assert supervision.get_request_template(draft["id"])["template"] == "Which region?"
        other_draft = list_product(config, publish=False, name="Unlisted")
        for missing in ("prd_missing", other_draft["id"]):
            with pytest.raises(NotFound):
                supervision.get_request_template(missing)


# -- delisting ----------------------------------------------------------------------


def test_an_operator_delists_a_product_and_subscribers_hear_of_it(seller):
    config, clock = seller
    product = list_product(config)
    queue = EventQueue(config["AMQP_URI"], "catalog", "catalog.product.changed")
    try:
        clock.advance(days=1)
        with rpc(config, OPERATOR) as catalog:
            delisted = catalog.delist_product(product["id"], {"reason": "misleading description"})
        envelope = queue.next()
    finally:
        queue.close()
    assert delisted["status"] == "delisted"
    assert delisted["delist_reason"] == "misleading description"
    assert envelope["type"] == "catalog.product.changed"
    assert envelope["data"]["status"] == "delisted"
    assert envelope["data"]["product_id"] == product["id"]

    with rpc(config, BUYER) as buyer:
        with pytest.raises(NotFound):
            buyer.get_product(product["id"])
        assert buyer.search_products({})["total"] == 0
        spec_id = product["specifications"][0]["id"]
        with pytest.raises(NotFound):
            buyer.quote(
                {
                    "product_id": product["id"],
                    "specification_id": spec_id,
                    "billing_mode": "one_time",
                }
            )
    with rpc(config, SELLER) as seller_rpc:
        assert seller_rpc.get_product(product["id"])["delist_reason"] == "misleading description"
        [row] = seller_rpc.list_seller_products()["items"]
        assert row["status"] == "delisted"
    with rpc(config, OPERATOR) as operator, pytest.raises(Conflict):
        operator.delist_product(product["id"], {"reason": "again"})


def test_only_operators_delist(seller):
    config, _clock = seller
    product = list_product(config)
    for who in (SELLER, BUYER):
        with rpc(config, who) as catalog, pytest.raises(Forbidden):
            catalog.delist_product(product["id"], {"reason": "no"})
    with rpc(config, OPERATOR) as catalog:
        with pytest.raises(NotFound):
            catalog.delist_product("prd_missing", {"reason": "gone"})
        with pytest.raises(ValidationError) as raised:
            catalog.delist_product(product["id"], {"reason": ""})
    assert list(raised.value.fields) == ["reason"]


# -- sellers ------------------------------------------------------------------------


def consumed(outcome):
    """How many account events the catalog's handler finished with ``outcome``."""
    return events_consumed("catalog.on_account_created", ACCOUNT_CREATED, outcome)


def account_created(config, account_id: str, name: str, type: str, times: int = 1) -> None:
    """Announce the account opened, as iam-agency does."""
    data = {"account_id": account_id, "name": name, "type": type, "reseller_account_id": None}
    publish_event(config["AMQP_URI"], ACCOUNT_CREATED, data, subject=account_id, times=times)


def test_a_new_seller_account_can_list_products_at_once(catalog):
    config, _clock = catalog
    processed, duplicates = consumed("processed"), consumed("duplicate")
    newcomer = Identity("acc_new_seller", "usr_new", "seller", ("seller",))
    account_created(config, "acc_new_buyer", "Ann", "buyer")
    # delivered twice
    account_created(config, newcomer.account_id, "Newcomer Software", "seller", times=2)

    wait_for(
        lambda: (consumed("processed"), consumed("duplicate")) == (processed + 2, duplicates + 1),
        "three deliveries handled",
    )
    assert count_rows(config, "sellers") == 1
    with rpc(config, newcomer) as service:
        profile = service.get_seller_profile()
        product = service.publish_product(service.create_product(product_payload())["id"])
    assert (profile["company_name"], profile["currency"]) == ("Newcomer Software", "USD")
    with rpc(config) as anyone:
        assert anyone.get_product(product["id"])["seller"]["company_name"] == "Newcomer Software"


def test_a_late_account_event_keeps_the_profile_the_seller_set(catalog):
    config, _clock = catalog
    set_up_seller(config, SELLER, company_name="Acme Cloud Ltd")
    account_created(config, SELLER.account_id, "acme", "seller")
    wait_for(lambda: count_rows(config, "inbox_messages") == 1, "the event handled")
    with rpc(config, SELLER) as service:
        assert service.get_seller_profile()["company_name"] == "Acme Cloud Ltd"


def test_seller_profile_is_replaced_and_its_products_priced_in_the_marketplace_currency(seller):
    config, _clock = seller
    old = list_product(config)
    profile = set_up_seller(
        config,
        SELLER,
        company_name="Acme Europe GmbH",
        email="Sales@Acme.example.com",
        mobile=None,
        support_range=None,
        currency="USD",
    )
    assert profile["company_name"] == "Acme Europe GmbH"
    assert profile["email"] == "sales@acme.example.com"
    assert (profile["mobile"], profile["support_range"], profile["currency"]) == (None, None, "USD")
    new = list_product(config)
    with rpc(config) as anyone:
        assert anyone.get_product(old["id"])["lowest_price"] == {"amount": 3, "currency": "USD"}
        assert anyone.get_product(new["id"])["lowest_price"] == {"amount": 3, "currency": "USD"}
        renamed = anyone.search_products({"q": "acme europe"})
        assert renamed["total"] == 2
        assert {item["seller"]["company_name"] for item in renamed["items"]} == {"Acme Europe GmbH"}
        assert anyone.search_products({"q": "Acme Cloud"})["total"] == 0
    set_up_seller(config, SELLER, company_name="Acme Europe GmbH")  # no currency: kept
    with rpc(config, SELLER) as service:
        assert service.get_seller_profile()["currency"] == "USD"


def test_a_sellers_public_details_are_answered_to_another_service(seller):
    """billing prints them on the invoices of the seller's orders."""
    config, _clock = seller
    with rpc(config) as anyone:
        found = anyone.get_seller(SELLER.account_id)
        assert found == {
            "id": SELLER.account_id,
            "company_name": "Acme Cloud Ltd",
            "email": seller_email(SELLER),
            "mobile": "+86 755 2878 0808",
            "support_range": "Mon-Fri 09:00-18:00 UTC+8",
        }
        with pytest.raises(NotFound):
            anyone.get_seller(OTHER_SELLER.account_id)
        with pytest.raises(ValidationError) as refused:
            anyone.get_seller("")
    assert list(refused.value.fields) == ["seller_account_id"]


def test_a_price_in_another_currency_than_the_marketplaces_is_refused_naming_it(seller):
    """An order in EUR could be placed and never paid: the seller cannot price in it."""
    config, _clock = seller
    with pytest.raises(ValidationError) as refused:
        set_up_seller(config, SELLER, company_name="Acme Europe GmbH", currency="EUR")
    assert refused.value.fields == {"currency": ["must be USD, the marketplace currency"]}
    with rpc(config, SELLER) as service:
        profile = service.get_seller_profile()
    assert (profile["company_name"], profile["currency"]) == ("Acme Cloud Ltd", "USD")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"currency": "usd"}, "currency"),
        ({"mobile": "call me"}, "mobile"),
        ({"company_name": ""}, "company_name"),
        ({"website": "https://acme.example.com"}, "website"),
    ],
)
def test_a_bad_seller_profile_is_refused_naming_the_field(catalog, changes, field):
    config, _clock = catalog
    with pytest.raises(ValidationError) as raised:
        set_up_seller(config, SELLER, **changes)
    assert list(raised.value.fields) == [field]
    with rpc(config, BUYER) as service, pytest.raises(Forbidden):
        service.upsert_seller_profile({"company_name": "x", "email": "x@example.com"})
    assert count_rows(config, "sellers") == 0


def test_a_seller_lists_its_own_products_in_every_status_newest_first(seller):
    config, clock = seller
    set_up_seller(config, OTHER_SELLER)
    ids = []
    for index in range(5):
        clock.advance(minutes=1)
        ids.append(list_product(config, publish=index % 2 == 0, name=f"Acme {index}")["id"])
    list_product(config, OTHER_SELLER, name="Zeta thing")
    with rpc(config, SELLER) as service:
        first = service.list_seller_products({"page": 1, "page_size": 2})
        rest = service.list_seller_products({"page": "2", "page_size": "2"})
        last = service.list_seller_products({"page": 3, "page_size": 2})
        with pytest.raises(ValidationError) as raised:
            service.list_seller_products({"page": 0, "page_size": 500})
    assert set(raised.value.fields) == {"page", "page_size"}
    assert first["total"] == 5 and (first["page"], first["page_size"]) == (1, 2)
    assert [row["id"] for row in first["items"] + rest["items"] + last["items"]] == ids[::-1]
    assert [row["status"] for row in first["items"]] == ["published", "draft"]


# -- saved lists --------------------------------------------------------------------


def test_a_buyer_saves_a_product_once_and_sees_what_buying_it_needs(seller):
    config, clock = seller
    product = list_product(config)
    other = list_product(
        config,
        name="Acme Vault",
        specifications=[
            {"name": "Single", "prices": [{"billing_mode": "one_time", "amount": 4900}]}
        ],
    )
    with rpc(config, BUYER) as buyer:
        first = buyer.save_product({"product_id": product["id"]})
        clock.advance(minutes=1)
        again = buyer.save_product({"product_id": product["id"]})
        buyer.save_product({"product_id": other["id"]})
        saved = buyer.list_saved_products()
    assert again == first == {"product_id": product["id"], "saved_at": "2026-11-27T09:00:00+00:00"}
    assert saved["total"] == 2
    latest, earliest = saved["items"]
    assert latest["product_id"] == other["id"]
    assert earliest == {
        "product_id": product["id"],
        "name": "Acme Backup",
        "status": "published",
        "seller": {"id": SELLER.account_id, "company_name": "Acme Cloud Ltd"},
        "delivery_method": "saas",
        "service_supervision": True,
        "specifications": product["specifications"],
        "lowest_price": {"amount": 3, "currency": "USD"},
        "saved_at": "2026-11-27T09:00:00+00:00",
    }
    assert latest["specifications"][0]["quantity"] is None
    with rpc(config, OTHER_BUYER) as someone_else:
        assert someone_else.list_saved_products()["total"] == 0


def test_a_delisted_product_stays_in_the_saved_list_marked_delisted(seller):
    config, _clock = seller
    product = list_product(config)
    with rpc(config, BUYER) as buyer:
        buyer.save_product({"product_id": product["id"]})
    with rpc(config, OPERATOR) as operator:
        operator.delist_product(product["id"], {"reason": "retired"})
    with rpc(config, BUYER) as buyer:
        [row] = buyer.list_saved_products()["items"]
        assert row["status"] == "delisted"
        buyer.remove_saved_product(product["id"])
        assert buyer.list_saved_products()["total"] == 0
        with pytest.raises(NotFound):
            buyer.remove_saved_product(product["id"])


def test_only_buyers_save_and_only_products_buyers_can_see(seller):
    config, _clock = seller
    draft = list_product(config, publish=False)
    with rpc(config, BUYER) as buyer:
        for missing in (draft["id"], "prd_nope"):
            with pytest.raises(NotFound):
                buyer.save_product({"product_id": missing})
        with pytest.raises(ValidationError):
            buyer.list_saved_products({"page": 1, "page_size": 0})
    for who, error in ((SELLER, Forbidden), (None, Unauthenticated)):
        with rpc(config, who) as service:
            with pytest.raises(error):
                service.save_product({"product_id": draft["id"]})
            with pytest.raises(error):
                service.list_saved_products()
            with pytest.raises(error):
                service.remove_saved_product(draft["id"])
    assert count_rows(config, "saved_products") == 0


# -- quotes -------------------------------------------------------------------------


def test_a_quote_fixes_everything_an_order_needs(seller):
    config, _clock = seller
    product = list_product(config)
    spec_id = product["specifications"][0]["id"]
    with rpc(config, BUYER) as buyer:
        monthly = buyer.quote(quote_of(product))
        yearly = buyer.quote(quote_of(product, period={"unit": "year", "count": 2}, quantity=4))
        hourly = buyer.quote(quote_of(product, billing_mode="pay_per_use", period=..., quantity=25))
        once = buyer.quote(quote_of(product, billing_mode="one_time", period=None, quantity=...))
    assert monthly == {
        "product_id": product["id"],
        "product_name": "Acme Backup",
        "seller_account_id": SELLER.account_id,
        "seller_company_name": "Acme Cloud Ltd",
        "delivery_method": "saas",
        "service_supervision": True,
        "product_guide_url": "https://docs.acme.example.com/backup/guide",
        "specification_id": spec_id,
        "specification_name": "Standard",
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 3},
        "quantity": 10,
        "unit_price": {"amount": 1500, "currency": "USD"},
        "amount": {"amount": 45000, "currency": "USD"},
        "breakdown": [
            {
                "item": "product",
                "description": "Standard",
                "quantity": 10,
                "unit_price": {"amount": 1500, "currency": "USD"},
                "amount": {"amount": 45000, "currency": "USD"},
            }
        ],
        "image": None,
    }
    assert (yearly["unit_price"]["amount"], yearly["amount"]["amount"]) == (15000, 120000)
    assert (hourly["period"], hourly["amount"]["amount"]) == (None, 75)
    assert (once["quantity"], once["amount"]["amount"]) == (1, 90000)


def test_an_image_is_quoted_with_its_deployment_itemised(seller):
    config, _clock = seller
    product = list_product(config, delivery_method="image", service_supervision=False)
    deployment = {
        "flavor_id": "s6.large.2",
        "system_disk_gb": 60,
        "data_disks": [{"size_gb": 100}],
        "eip": {"bandwidth_mbps": 10},
        "count": 2,
    }
    with rpc(config, BUYER) as buyer:
        quote = buyer.quote(quote_of(product, quantity=..., deployment=deployment))
        with pytest.raises(ValidationError) as missing:
            buyer.quote(quote_of(product, quantity=...))
        with pytest.raises(ValidationError) as unoffered:
            buyer.quote(quote_of(product, quantity=..., deployment={"flavor_id": "x1.huge"}))
    lines = {line["item"]: line["amount"]["amount"] for line in quote["breakdown"]}
    # three months of: the image (1500 a month) and a 4800 server, 160 GB at 10 and
    # 10 Mbit/s at 300, on each of two servers
    assert lines == {
        "image": 1500 * 3 * 2,
        "servers": 4800 * 3 * 2,
        "disks": 160 * 10 * 3 * 2,
        "eip": 10 * 300 * 3 * 2,
    }
    assert quote["amount"] == {"amount": sum(lines.values()), "currency": "USD"}
    assert quote["image"]["image_id"] == "img-acme-backup-22"
    assert missing.value.fields == {"deployment": ["is required for an image product"]}
    assert "deployment.flavor_id" in unoffered.value.fields


def test_quotes_of_what_is_not_for_sale_are_not_found(seller):
    config, _clock = seller
    product = list_product(config)
    other = list_product(config, name="Other")
    draft = list_product(config, publish=False)
    with rpc(config) as anyone:
        for payload in (
            quote_of(product, product_id="prd_missing"),
            quote_of(product, specification_id="spc_missing"),
            quote_of(product, specification_id=other["specifications"][0]["id"]),
            quote_of(draft),
        ):
            with pytest.raises(NotFound):
                anyone.quote(payload)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"quantity": 1001}, {"quantity": ["must be between 1 and 1000"]}),
        ({"quantity": 0}, {"quantity": ["must be between 1 and 1000"]}),
        ({"period": None}, {"period": ["is required for yearly_monthly"]}),
        (
            {"period": {"unit": "month", "count": 12}},
            {"period.count": ["must be between 1 and 11 for month"]},
        ),
        (
            {"period": {"unit": "year", "count": 6}},
            {"period.count": ["must be between 1 and 5 for year"]},
        ),
        (
            {"period": {"unit": "week", "count": 1}},
            {"period.unit": ["Must be one of: month, year."]},
        ),
        ({"billing_mode": "one_time"}, {"period": ["must be empty for one_time"]}),
        ({"quantity": 2.5}, {"quantity": ["Not a valid integer."]}),
        ({"coupon": "FREE"}, {"coupon": ["Unknown field."]}),
    ],
)
def test_a_configuration_not_offered_is_refused_naming_the_field(seller, changes, fields):
    config, _clock = seller
    product = list_product(config)
    with rpc(config) as anyone, pytest.raises(ValidationError) as raised:
        anyone.quote(quote_of(product, **changes))
    assert raised.value.fields == fields


def test_a_billing_mode_or_period_unit_without_a_price_is_refused(seller):
    config, _clock = seller
    product = list_product(
        config,
        specifications=[
            {
                "name": "Monthly only",
                "prices": [
                    {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 500}
                ],
            }
        ],
    )
    with rpc(config) as anyone:
        with pytest.raises(ValidationError) as raised:
            anyone.quote(quote_of(product, period={"unit": "year", "count": 1}, quantity=...))
        assert raised.value.fields == {"period.unit": ["this specification has no year price"]}
        with pytest.raises(ValidationError) as raised:
            anyone.quote(quote_of(product, billing_mode="pay_per_use", period=None, quantity=...))
        assert raised.value.fields == {"billing_mode": ["is not offered by this specification"]}
        with pytest.raises(ValidationError) as raised:
            anyone.quote(quote_of(product, quantity=2))
        assert raised.value.fields == {
            "quantity": ["must be 1: this specification has no quantity dimension"]
        }


def test_ids_are_checked_before_they_reach_the_database(seller):
    config, _clock = seller
    with rpc(config) as anyone:
        for bad in ("", "x" * 41, None):
            with pytest.raises(ValidationError):
                anyone.get_product(bad)
        with pytest.raises(NotFound):
            anyone.get_product(f"prd_{uuid.uuid4().hex}")
