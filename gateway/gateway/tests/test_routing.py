"""What every declared route does with a request, in order, tested on the generic
mechanism with fake dependencies (no broker, no database)."""

import dataclasses
import json
from types import SimpleNamespace

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.routes import ROUTES
from gateway.routing import AUTHENTICATED, Route, handle
from gateway.settings import Settings
from mercato.contracts.common import EmptyRequest
from mercato.errors import Forbidden, NotFound, ValidationError
from mercato.identity import BUYER

ORDER = {"id": "ord_1", "status": "paid", "internal": "not for clients"}


class FakeService:
    """An RPC proxy: records each call, answers ``answer``."""

    def __init__(self, answer=None) -> None:
        self.calls: list[tuple] = []
        self.answer = answer

    def __getattr__(self, method):
        def call(*args):
            self.calls.append((method, *args))
            return self.answer

        return call


class FakeAuth:
    def __init__(self, roles=(BUYER,)) -> None:
        self.roles = roles
        self.asked: list[tuple[str, ...]] = []

    def authenticate(self, request, iam, *roles):
        self.asked.append(roles)
        if roles and not set(roles) & set(self.roles):
            raise Forbidden(f"this needs the role {' or '.join(roles)}")

    def authenticate_if_present(self, request, iam):
        self.asked.append(())


class FakeIdempotency:
    def __init__(self) -> None:
        self.bodies: list = []

    def once(self, request, body, work):
        self.bodies.append(body)
        return work()


def gateway(roles=(BUYER,), answer=ORDER):
    return SimpleNamespace(
        auth=FakeAuth(roles),
        iam_agency=FakeService(),
        orders=FakeService(answer),
        catalog=FakeService({"items": [], "total": 0, "page": 2, "page_size": 20}),
        settings=Settings(),
        idempotency=FakeIdempotency(),
    )


def route(name: str) -> Route:
    return next(route for route in ROUTES if route.name == name)


def request(method="POST", body=None, query="") -> Request:
    data = None if body is None else json.dumps(body)
    return Request(
        EnvironBuilder(
            method=method, data=data, query_string=query, content_type="application/json"
        ).get_environ()
    )


def test_a_route_for_a_role_refuses_anyone_else_before_any_service_is_asked():
    seller = gateway(roles=("seller",))
    with pytest.raises(Forbidden):
        handle(
            seller,
            route("pay_order"),
            request(body={"payment_method": "balance"}),
            {"order_id": "o"},
        )
    assert seller.auth.asked == [(BUYER,)]
    assert seller.orders.calls == [] and seller.idempotency.bodies == []


def test_path_ids_then_the_loaded_body_are_passed_on_and_the_answer_is_projected():
    buyer = gateway()
    response = handle(
        buyer, route("pay_order"), request(body={"payment_method": "balance"}), {"order_id": "o_1"}
    )
    assert buyer.orders.calls == [("pay_order", "o_1", {"payment_method": "balance", "card": None})]
    assert response.status_code == 200
    assert response.get_json() == {"id": "ord_1", "status": "paid"}
    assert buyer.idempotency.bodies == [{"payment_method": "balance"}]


def test_a_route_that_takes_an_empty_body_passes_only_its_ids_on():
    buyer = gateway()
    handle(buyer, route("cancel_order"), request(body={}), {"order_id": "o_1"})
    assert buyer.orders.calls == [("cancel_order", "o_1")]


def test_a_query_is_passed_on_loaded_as_one_dict():
    seller = gateway(roles=("seller",))
    response = handle(seller, route("list_seller_products"), request("GET", query="page=2"), {})
    assert seller.catalog.calls == [("list_seller_products", {"page": 2, "page_size": 20})]
    assert response.get_json()["page"] == 2


@pytest.mark.parametrize(
    "body, path_values, error",
    [
        ({"payment_method": "cash"}, {"order_id": "o_1"}, ValidationError),
        ({"payment_method": "balance"}, {"order_id": "o 1"}, NotFound),
    ],
)
def test_a_bad_id_or_body_is_refused_before_any_service_is_asked(body, path_values, error):
    buyer = gateway()
    with pytest.raises(error):
        handle(buyer, route("pay_order"), request(body=body), path_values)
    assert buyer.orders.calls == [] and buyer.idempotency.bodies == []


def test_a_route_that_answers_nothing_is_204():
    buyer = gateway()
    response = handle(
        buyer, route("remove_saved_product"), request("DELETE"), {"product_id": "prd_1"}
    )
    assert response.status_code == 204
    assert buyer.catalog.calls == [("remove_saved_product", "prd_1")]


def test_every_post_but_the_credentials_reveal_and_the_upload_honours_the_idempotency_key():
    replayed = {r.name for r in ROUTES if r.honours_idempotency_key}
    posts = {r.name for r in ROUTES if r.method == "POST"}
    assert replayed == posts - {"reveal_credentials", "upload_attachment"}


def test_only_the_upload_takes_a_larger_body_and_reads_it_itself():
    larger = {r.name: r for r in ROUTES if r.max_body_bytes is not None}
    assert list(larger) == ["upload_attachment"]
    assert larger["upload_attachment"].raw_body is not None
    assert larger["upload_attachment"].roles == ("buyer", "seller", "operator")


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"rpc": None}, "either the one RPC it calls or a handler"),
        ({"body": None}, "needs a body schema"),
        ({"query": EmptyRequest}, "a body or a query, not both"),
        ({"who": "admin"}, "who must be one of"),
        ({"who": ("buyer", "admin")}, "who as a tuple names roles"),
        ({"raw_body": {"type": "string"}}, "a raw body is the whole body"),
        ({"method": "HEAD"}, "method must be one of"),
        ({"method": "PATCH", "body": None}, "needs a body schema"),
        ({"response": None}, "or 204 with no content"),
    ],
)
def test_a_declaration_that_cannot_be_served_fails_when_it_is_made(change, problem):
    with pytest.raises(ValueError, match=problem):
        dataclasses.replace(route("pay_order"), **change)


def test_an_authenticated_route_asks_for_no_role():
    buyer = gateway()
    assert route("get_order").who == AUTHENTICATED
    handle(buyer, route("get_order"), request("GET"), {"order_id": "o_1"})
    assert buyer.auth.asked == [()]
    assert buyer.orders.calls == [("get_order", "o_1")]
