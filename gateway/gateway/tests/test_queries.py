"""Query strings and path ids: every value arrives as a string and is converted and
checked at the gateway, so a bad one is a 400 (or a 404 for an id) naming it, and
what is passed on (ints and booleans) the service loads again with the same schema."""

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.web import path_id, read_query
from mercato.contracts.catalog import ProductSearchQuery
from mercato.contracts.orders import OrdersQuery
from mercato.errors import NotFound, ValidationError
from mercato.validation import PageSchema, load


def query(string: str) -> dict[str, str]:
    return read_query(Request(EnvironBuilder(query_string=string).get_environ()))


def test_query_string_is_read_one_value_per_name():
    assert query("q=backup+tool&page=2&sort=price_asc") == {
        "q": "backup tool",
        "page": "2",
        "sort": "price_asc",
    }


def test_a_name_given_twice_is_a_validation_error_naming_it():
    with pytest.raises(ValidationError) as caught:
        query("page=1&page=2&q=x")
    assert caught.value.fields == {"page": ["Give this parameter once."]}


def test_pages_default_to_the_first_twenty():
    assert load(PageSchema, query("")) == {"page": 1, "page_size": 20}


def test_page_values_are_converted_from_strings():
    assert load(PageSchema, query("page=3&page_size=100")) == {"page": 3, "page_size": 100}


@pytest.mark.parametrize(
    "string, field, rule",
    [
        ("page=abc", "page", "Not a valid integer."),
        ("page=1.0", "page", "Not a valid integer."),
        ("page=1e3", "page", "Not a valid integer."),
        ("page=1_000", "page", "Not a valid integer."),
        ("page=%201", "page", "Not a valid integer."),
        ("page=" + "9" * 30, "page", "Not a valid integer."),
        ("page=0", "page", "Must be greater than or equal to 1 and less than or equal to 100000."),
        ("page=100001", "page", None),
        ("page_size=101", "page_size", None),
        ("page_size=0", "page_size", None),
        ("page_size=-5", "page_size", None),
        ("colour=red", "colour", "Unknown field."),
    ],
)
def test_a_bad_page_is_400_naming_it(string, field, rule):
    with pytest.raises(ValidationError) as caught:
        load(PageSchema, query(string))
    assert list(caught.value.fields) == [field]
    if rule:
        assert caught.value.fields[field] == [rule]


def test_an_empty_value_means_not_given():
    assert load(OrdersQuery, query("status=&page=")) == {
        "status": None,
        "page": 1,
        "page_size": 20,
    }


def test_orders_filter_by_status():
    assert load(OrdersQuery, query("status=unpaid"))["status"] == "unpaid"
    with pytest.raises(ValidationError) as caught:
        load(OrdersQuery, query("status=lost"))
    assert list(caught.value.fields) == ["status"]


def test_search_converts_every_filter():
    loaded = load(
        ProductSearchQuery,
        query(
            "q=backup&delivery_method=saas&category=storage&billing_mode=one_time"
            "&seller_id=acc_1&min_price=100&max_price=5000&service_supervision=true"
            "&sort=price_desc&page=2&page_size=50"
        ),
    )
    assert loaded == {
        "q": "backup",
        "delivery_method": "saas",
        "category": "storage",
        "billing_mode": "one_time",
        "seller_id": "acc_1",
        "min_price": 100,
        "max_price": 5000,
        "service_supervision": True,
        "sort": "price_desc",
        "page": 2,
        "page_size": 50,
    }


def test_search_passes_on_what_was_given_and_the_defaults():
    assert load(ProductSearchQuery, query("q=backup")) == {
        "q": "backup",
        "sort": "relevance",
        "page": 1,
        "page_size": 20,
    }


@pytest.mark.parametrize(
    "string, field",
    [
        ("delivery_method=email", "delivery_method"),
        ("billing_mode=weekly", "billing_mode"),
        ("sort=cheapest", "sort"),
        ("min_price=-1", "min_price"),
        ("max_price=ten", "max_price"),
        ("min_price=500&max_price=100", "max_price"),
        ("service_supervision=yes", "service_supervision"),
        ("service_supervision=1", "service_supervision"),
        ("q=" + "x" * 201, "q"),
        ("seller_id=" + "a" * 41, "seller_id"),
        ("page_size=101", "page_size"),
        ("page=abc", "page"),
        ("query=backup", "query"),
    ],
)
def test_a_bad_search_is_400_naming_the_parameter(string, field):
    with pytest.raises(ValidationError) as caught:
        load(ProductSearchQuery, query(string))
    assert list(caught.value.fields) == [field]


@pytest.mark.parametrize(
    "string",
    [
        "",
        "q=backup&sort=newest",
        "service_supervision=false&min_price=0&max_price=0",
        "billing_mode=pay_per_use&delivery_method=image&category=storage&seller_id=acc_1",
    ],
)
def test_the_catalog_loads_every_search_the_gateway_passes_on_to_the_same(string):
    passed_on = load(ProductSearchQuery, query(string))
    assert load(ProductSearchQuery, passed_on) == passed_on


@pytest.mark.parametrize("string", ["", "status=paid&page=2&page_size=5"])
def test_orders_loads_every_list_query_the_gateway_passes_on_to_the_same(string):
    passed_on = load(OrdersQuery, query(string))
    assert load(OrdersQuery, passed_on) == passed_on


@pytest.mark.parametrize("value", [True, 1.0, 2.5, "1.0", [1]])
def test_a_page_passed_on_is_a_whole_number_never_a_lookalike(value):
    with pytest.raises(ValidationError) as caught:
        load(PageSchema, {"page": value})
    assert list(caught.value.fields) == ["page"]


@pytest.mark.parametrize("value", ["ord_5c2e9a0b1d2f4e6a8b0c2d4e6f8a0b1c", "a", "A-b_9"])
def test_a_path_id_is_passed_on_as_given(value):
    assert path_id(value, "order") == value


@pytest.mark.parametrize("value", ["", "a" * 41, "ord 1", "ord.1", "ord%2F1", "ñ", "ord_1;drop"])
def test_a_path_id_that_cannot_be_ours_is_not_found(value):
    with pytest.raises(NotFound) as caught:
        path_id(value, "order")
    assert caught.value.message == "order not found"
