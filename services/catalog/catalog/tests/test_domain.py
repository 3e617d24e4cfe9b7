"""Unit tests of the catalog's rules and input schemas (no broker, no database)."""

import datetime as dt

import pytest

from catalog import domain
from catalog.domain import Period, Price, Quantity, Specification
from catalog.models import Product
from catalog.tests.support import product_payload
from mercato.contracts.catalog import CreateProductRequest, ProductSearchQuery
from mercato.errors import BusinessRuleViolation, Conflict, ValidationError
from mercato.money import Money
from mercato.validation import PageSchema, load

MONTH = Price("yearly_monthly", "month", 1500)
YEAR = Price("yearly_monthly", "year", 15000)
HOUR = Price("pay_per_use", "hour", 3)
ONCE = Price("one_time", None, 90000)
USERS = Quantity("users", 1, 1000)


def spec(*prices, quantity=USERS, name="Standard"):
    return Specification(name=name, prices=tuple(prices), quantity=quantity)


def broken_fields(specifications):
    with pytest.raises(ValidationError) as raised:
        domain.check_specifications(specifications)
    return raised.value.fields


# -- specifications and prices ------------------------------------------------------


def test_a_specification_with_every_billing_mode_is_valid():
    domain.check_specifications([spec(MONTH, YEAR, HOUR, ONCE), spec(ONCE, name="Pro")])


def test_a_product_needs_at_least_one_specification():
    assert broken_fields([]) == {"specifications": ["must have at least one specification"]}


def test_each_specification_needs_at_least_one_price():
    assert broken_fields([spec(MONTH), spec(name="Empty")]) == {
        "specifications.1.prices": ["must have at least one price"]
    }


def test_two_prices_with_the_same_billing_mode_and_period_unit_are_refused():
    fields = broken_fields([spec(MONTH, YEAR, Price("yearly_monthly", "month", 900))])
    assert list(fields) == ["specifications.0.prices.2"]


def test_one_time_prices_of_one_specification_are_duplicates_too():
    assert list(broken_fields([spec(ONCE, Price("one_time", None, 1))])) == [
        "specifications.0.prices.1"
    ]


@pytest.mark.parametrize(
    ("price", "rule"),
    [
        (Price("yearly_monthly", "hour", 1), "must be month or year for yearly_monthly"),
        (Price("yearly_monthly", None, 1), "must be month or year for yearly_monthly"),
        (Price("pay_per_use", "month", 1), "must be hour for pay_per_use"),
        (Price("pay_per_use", None, 1), "must be hour for pay_per_use"),
        (Price("one_time", "year", 1), "must be empty for one_time"),
    ],
)
def test_the_period_unit_must_be_one_its_billing_mode_allows(price, rule):
    assert broken_fields([spec(price)]) == {"specifications.0.prices.0.period_unit": [rule]}


def test_an_unknown_billing_mode_is_refused():
    assert list(broken_fields([spec(Price("weekly", None, 1))])) == [
        "specifications.0.prices.0.billing_mode"
    ]


@pytest.mark.parametrize("amount", [-1, 1.5, True, "100", domain.MAX_PRICE_AMOUNT + 1])
def test_amounts_are_whole_non_negative_minor_units(amount):
    assert list(broken_fields([spec(Price("one_time", None, amount))])) == [
        "specifications.0.prices.0.amount"
    ]


def test_a_free_price_is_allowed():
    domain.check_specifications([spec(Price("one_time", None, 0))])


@pytest.mark.parametrize(
    ("quantity", "field", "rule"),
    [
        (Quantity("users", 0, 10), "specifications.0.quantity.min", "must be at least 1"),
        (Quantity("users", 5, 4), "specifications.0.quantity.max", "must not be less than min"),
        (
            Quantity("users", 1, domain.MAX_QUANTITY + 1),
            "specifications.0.quantity.max",
            f"must be at most {domain.MAX_QUANTITY}",
        ),
    ],
)
def test_quantity_bounds_start_at_one_and_max_is_not_below_min(quantity, field, rule):
    assert broken_fields([spec(ONCE, quantity=quantity)]) == {field: [rule]}


def test_a_quantity_of_exactly_one_is_allowed():
    domain.check_specifications([spec(ONCE, quantity=Quantity("licenses", 1, 1))])


def test_specification_names_are_unique_within_a_product():
    assert list(broken_fields([spec(ONCE), spec(ONCE, name="standard")])) == [
        "specifications.1.name"
    ]


def test_every_broken_rule_is_reported_at_once():
    fields = broken_fields(
        [spec(Price("pay_per_use", "month", -5)), spec(name="Empty", quantity=Quantity("u", 0, 1))]
    )
    assert set(fields) == {
        "specifications.0.prices.0.period_unit",
        "specifications.0.prices.0.amount",
        "specifications.1.prices",
        "specifications.1.quantity.min",
    }


def test_lowest_price_is_the_cheapest_price_of_any_specification():
    assert domain.lowest_price([spec(MONTH, YEAR), spec(HOUR, name="Hourly")]) == 3


# -- status --------------------------------------------------------------------------


NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def product(status, delivery_method="image", saas_endpoint_url=None):
    return Product(
        id="prd_1",
        seller_account_id="acc_seller",
        name="Acme Backup",
        category="storage",
        delivery_method=delivery_method,
        saas_endpoint_url=saas_endpoint_url,
        status=status,
        currency="USD",
        lowest_price=1500,
    )


def publish(status, delivery_method="image", saas_endpoint_url=None):
    draft = product(status, delivery_method, saas_endpoint_url)
    draft.publish(NOW)
    return draft.status


def test_only_a_draft_can_be_published():
    assert publish("draft") == "published"
    for status in ("published", "delisted"):
        with pytest.raises(Conflict, match=f"the product is {status}; publish needs it draft"):
            publish(status)


def test_a_saas_product_is_published_only_with_its_endpoint():
    assert publish("draft", "saas", "https://saas.example.com/mercato") == "published"
    with pytest.raises(BusinessRuleViolation) as raised:
        publish("draft", "saas", None)
    assert raised.value.code == "SAAS_ENDPOINT_REQUIRED"
    assert "saas_endpoint_url" in raised.value.message
    with pytest.raises(Conflict):
        publish("published", "saas", None)


def test_publishing_records_the_published_event_with_the_products_snapshot():
    draft = product("draft")
    draft.publish(NOW)
    [event] = draft.take_events()
    assert (event.type, event.subject, event.account_id) == (
        "catalog.product.published",
        "prd_1",
        "acc_seller",
    )
    assert event.data == {
        "product_id": "prd_1",
        "seller_account_id": "acc_seller",
        "name": "Acme Backup",
        "delivery_method": "image",
        "category": "storage",
        "status": "published",
        "lowest_price": {"amount": 1500, "currency": "USD"},
    }
    assert draft.published_at == draft.updated_at == NOW


def test_a_refused_move_records_nothing():
    listed = product("delisted")
    with pytest.raises(Conflict):
        listed.publish(NOW)
    assert listed.take_events() == [] and listed.status == "delisted"


# -- a saas product's endpoint ---------------------------------------------------------


def endpoint_errors(url, delivery_method="saas"):
    with pytest.raises(ValidationError) as raised:
        domain.check_saas_endpoint(delivery_method, url)
    assert list(raised.value.fields) == ["saas_endpoint_url"]
    [message] = raised.value.fields["saas_endpoint_url"]
    return message


@pytest.mark.parametrize(
    "url",
    [
        "https://saas.example.com/mercato",
        "https://saas.example.com:8443/mercato?tenant=eu",
        "http://127.0.0.1:8300/saas",
        "http://[::1]:8300/saas",
        "http://localhost:8300/saas",
        "http://LOCALHOST/saas",
        None,
    ],
)
def test_an_endpoint_is_https_or_plain_http_to_a_loopback_host(url):
    domain.check_saas_endpoint("saas", url)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://saas.example.com/mercato", "loopback"),
        ("http://10.0.0.5/saas", "loopback"),
        ("ftp://saas.example.com/mercato", "https"),
        ("/saas", "https"),
        ("saas.example.com/mercato", "https"),
        ("https:///saas", "host"),
        ("https://user:secret@saas.example.com/", "credentials"),
        ("https://saas.example.com/ mercato", "whitespace"),
    ],
)
def test_any_other_endpoint_is_refused_naming_the_field_and_the_rule(url, rule):
    assert rule in endpoint_errors(url)


def test_only_a_saas_product_has_an_endpoint():
    for method in ("license", "image", "professional_service"):
        assert endpoint_errors("https://x.example.com/", method) == (
            "only a saas product has an endpoint"
        )
        domain.check_saas_endpoint(method, None)


def test_a_new_product_reports_its_endpoint_and_specifications_together():
    with pytest.raises(ValidationError) as raised:
        domain.check_product(
            delivery_method="image",
            service_supervision=False,
            saas_endpoint_url="https://x.example.com/",
            specifications=[],
        )
    assert set(raised.value.fields) == {"saas_endpoint_url", "specifications"}


# -- service supervision ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["license", "professional_service"])
def test_a_license_or_a_professional_service_is_always_supervised(method):
    domain.check_supervision(method, True)
    with pytest.raises(ValidationError) as raised:
        domain.check_supervision(method, False)
    [message] = raised.value.fields["service_supervision"]
    assert message.startswith(f"must be true for {method.replace('_', ' ')} products")
    assert list(raised.value.fields) == ["service_supervision"]


@pytest.mark.parametrize("method", ["saas", "image"])
@pytest.mark.parametrize("supervised", [True, False])
def test_a_saas_or_image_product_may_be_supervised_or_not(method, supervised):
    domain.check_supervision(method, supervised)


def test_an_unsupervised_license_is_reported_with_the_products_other_broken_rules():
    with pytest.raises(ValidationError) as raised:
        domain.check_product(
            delivery_method="license",
            service_supervision=False,
            saas_endpoint_url="https://x.example.com/",
            specifications=[],
        )
    assert set(raised.value.fields) == {
        "service_supervision",
        "saas_endpoint_url",
        "specifications",
    }


def test_only_a_published_product_can_be_delisted():
    listed = product("published")
    listed.delist("retired", NOW)
    assert (listed.status, listed.delist_reason, listed.delisted_at) == ("delisted", "retired", NOW)
    assert [event.type for event in listed.take_events()] == ["catalog.product.changed"]
    for status in ("draft", "delisted"):
        with pytest.raises(Conflict, match=f"the product is {status}; delist needs it published"):
            product(status).delist("retired", NOW)


# -- pricing a configuration ---------------------------------------------------------


def price(specification=None, billing_mode="yearly_monthly", period=None, quantity=None):
    return domain.price_configuration(
        specification or spec(MONTH, YEAR, HOUR, ONCE),
        currency="USD",
        billing_mode=billing_mode,
        period=period,
        quantity=quantity,
    )


def test_yearly_monthly_costs_the_unit_price_times_periods_times_quantity():
    priced = price(period=Period("month", 3), quantity=10)
    assert priced.unit_price == Money(1500, "USD")
    assert priced.amount == Money(1500 * 3 * 10, "USD")
    assert price(period=Period("year", 2), quantity=4).amount == Money(15000 * 2 * 4, "USD")


def test_one_time_costs_the_unit_price_times_quantity():
    priced = price(billing_mode="one_time", quantity=7)
    assert (priced.period, priced.amount) == (None, Money(90000 * 7, "USD"))


def test_pay_per_use_quotes_the_price_of_one_hour():
    priced = price(billing_mode="pay_per_use", quantity=25)
    assert (priced.unit_price, priced.amount) == (Money(3, "USD"), Money(75, "USD"))


def test_quantity_defaults_to_one():
    assert price(billing_mode="one_time").quantity == 1


def test_the_largest_configuration_stays_exact():
    big = spec(Price("yearly_monthly", "month", domain.MAX_PRICE_AMOUNT), quantity=None)
    big = Specification("Big", big.prices, Quantity("units", 1, domain.MAX_QUANTITY))
    priced = price(big, period=Period("month", 11), quantity=domain.MAX_QUANTITY)
    assert priced.amount.amount == domain.MAX_PRICE_AMOUNT * 11 * domain.MAX_QUANTITY
    assert priced.amount.amount < 2**63


def refused(**kwargs):
    with pytest.raises(ValidationError) as raised:
        price(**kwargs)
    return raised.value.fields


def test_a_billing_mode_the_specification_does_not_offer_is_refused():
    assert refused(specification=spec(ONCE), billing_mode="pay_per_use") == {
        "billing_mode": ["is not offered by this specification"]
    }


def test_yearly_monthly_needs_a_period():
    assert refused(billing_mode="yearly_monthly") == {"period": ["is required for yearly_monthly"]}


@pytest.mark.parametrize("billing_mode", ["one_time", "pay_per_use"])
def test_a_period_is_only_for_yearly_monthly(billing_mode):
    assert refused(billing_mode=billing_mode, period=Period("month", 1)) == {
        "period": [f"must be empty for {billing_mode}"]
    }


@pytest.mark.parametrize(
    ("period", "rule"),
    [
        (Period("month", 0), "must be between 1 and 11 for month"),
        (Period("month", 12), "must be between 1 and 11 for month"),
        (Period("year", 6), "must be between 1 and 5 for year"),
    ],
)
def test_months_run_1_to_11_and_years_1_to_5(period, rule):
    assert refused(period=period) == {"period.count": [rule]}


def test_the_specification_must_have_a_price_for_the_period_unit():
    assert refused(specification=spec(MONTH), period=Period("year", 1)) == {
        "period.unit": ["this specification has no year price"]
    }


@pytest.mark.parametrize("quantity", [0, 1001])
def test_quantity_must_be_within_the_specification_bounds(quantity):
    assert refused(period=Period("month", 1), quantity=quantity) == {
        "quantity": ["must be between 1 and 1000"]
    }


def test_a_specification_without_quantity_dimension_sells_exactly_one():
    assert refused(
        specification=spec(ONCE, quantity=None), billing_mode="one_time", quantity=2
    ) == {"quantity": ["must be 1: this specification has no quantity dimension"]}


# -- search text --------------------------------------------------------------------


def test_text_is_normalised_to_lower_case_words():
    fullwidth_ecs = "\uff25\uff23\uff33"
    assert (
        domain.normalise_text(f"Acme's DB-Backup (v2), {fullwidth_ecs}!")
        == "acme s db backup v2 ecs"
    )
    assert domain.normalise_text("Café Münster_2") == "café münster 2"
    assert domain.normalise_text(None) == ""


def test_a_query_is_words_that_must_all_match_with_or_between_alternatives():
    query = domain.parse_text_query("Backup ECS or SNAPSHOT OR")
    assert query is not None
    assert query.groups == (("backup", "ecs"), ("snapshot",))
    assert query.websearch() == '"backup" "ecs" or "snapshot"'
    assert query.fts5() == '("backup" AND "ecs") OR ("snapshot")'


@pytest.mark.parametrize(
    ("q", "groups"),
    [
        ('"unterminated', (("unterminated",),)),
        ("back* NEAR(a b) AND NOT", (("back", "near", "a", "b", "and", "not"),)),
        ("name:backup -vault", (("name", "backup", "vault"),)),
        ("'); DROP TABLE products; --", (("drop", "table", "products"),)),
        ('^ ( ) * " : + -', None),
        ("or OR", None),
        ("", None),
        (None, None),
    ],
)
def test_query_syntax_is_never_passed_through(q, groups):
    query = domain.parse_text_query(q)
    assert (query.groups if query else None) == groups
    if query:
        for term in (term for group in query.groups for term in group):
            assert term.isalnum()


def test_a_query_keeps_at_most_sixteen_words():
    query = domain.parse_text_query(" ".join(f"w{i}" for i in range(40)))
    assert query is not None and len(query.groups[0]) == domain.MAX_QUERY_TERMS


# -- input schemas ------------------------------------------------------------------


def test_the_create_product_body_of_the_api_loads():
    data = load(CreateProductRequest, product_payload())
    assert data["specifications"][0]["prices"][3]["period_unit"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"delivery_method": "download"}, "delivery_method"),
        ({"product_guide_url": "not a url"}, "product_guide_url"),
        ({"product_guide_url": "ftp://docs.example.com/guide"}, "product_guide_url"),
        ({"saas_endpoint_url": ""}, "saas_endpoint_url"),
        ({"saas_endpoint_url": "https://x.example.com/" + "a" * 2048}, "saas_endpoint_url"),
        ({"saas_endpoint_url": 42}, "saas_endpoint_url"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"specifications": "none"}, "specifications"),
        (
            {
                "specifications": [
                    {"name": "S", "prices": [{"billing_mode": "one_time", "amount": 1.5}]}
                ]
            },
            "specifications.0.prices.0.amount",
        ),
        (
            {
                "specifications": [
                    {"name": "S", "prices": [{"billing_mode": "weekly", "amount": 1}]}
                ]
            },
            "specifications.0.prices.0.billing_mode",
        ),
    ],
)
def test_a_malformed_product_names_the_field(overrides, field):
    with pytest.raises(ValidationError) as raised:
        load(CreateProductRequest, product_payload(**overrides))
    assert field in raised.value.fields


def test_page_numbers_may_be_digit_strings_but_not_fractions():
    assert load(PageSchema, {"page": "2", "page_size": "50"}) == {
        "page": 2,
        "page_size": 50,
    }
    assert load(PageSchema, {}) == {"page": 1, "page_size": 20}
    for bad in ({"page": 0}, {"page": 1.5}, {"page": "1.5"}, {"page": True}, {"page_size": 101}):
        with pytest.raises(ValidationError):
            load(PageSchema, bad)


def test_search_ignores_empty_parameters_and_checks_the_price_range():
    assert load(ProductSearchQuery, {"q": "", "category": None, "service_supervision": "true"}) == {
        "page": 1,
        "page_size": 20,
        "sort": "relevance",
        "service_supervision": True,
    }
    with pytest.raises(ValidationError) as raised:
        load(ProductSearchQuery, {"min_price": "500", "max_price": "100"})
    assert raised.value.fields == {"max_price": ["must not be less than min_price"]}
    with pytest.raises(ValidationError) as raised:
        load(ProductSearchQuery, {"sort": "cheapest"})
    assert list(raised.value.fields) == ["sort"]
