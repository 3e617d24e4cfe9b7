"""A route for a role refuses any other caller with 403 before it reads or validates the
body or query and before it claims the Idempotency-Key: the answer does not depend on
what was sent (nor tells the rules of a route the caller may not use)."""

import pytest

from gateway.routes import ROUTES
from gateway.routing import AUTHENTICATED
from gateway.tests.marketplace import assert_error, bearer, sign_up
from mercato.identity import BUYER, OPERATOR, RESELLER, SELLER

pytestmark = pytest.mark.interface

# someone each route is not for, among the accounts anyone may open
OUTSIDERS = (BUYER, SELLER, RESELLER)


# routes for every account anyone may open (not operators): no outsider among those
# accounts to try them with; iam-agency's own tests refuse an operator there
FOR_EVERY_OPENED_ACCOUNT = {("PATCH", "/v1/account")}


def outsider(roles: tuple[str, ...]) -> str | None:
    return next((role for role in OUTSIDERS if role not in roles), None)


def test_every_route_for_a_role_answers_403_to_another_whatever_it_sends(stack):
    tokens = {role: sign_up(stack, role).token for role in OUTSIDERS}
    refused = []
    without_outsider = set()
    for route in ROUTES:
        if not route.roles:
            continue
        caller = outsider(route.roles)
        if caller is None:
            without_outsider.add((route.method, route.path))
            continue
        path = route.path
        for name in route.path_ids:
            path = path.replace("{" + name + "}", "x1")
        headers = {
            **bearer(tokens[caller]),
            "Idempotency-Key": "not a valid key",  # spaces: a 400 if it were read
            "Content-Type": "application/json",
        }
        response = stack.request(
            route.method,
            path + "?page=zero&unknown=1",
            data=b'{"not": json',
            headers=headers,
        )
        if response.status_code != 403:
            refused.append((route.method, route.path, response.status_code, response.text))
        else:
            assert_error(response, 403, "FORBIDDEN")
    assert refused == []
    assert without_outsider == FOR_EVERY_OPENED_ACCOUNT
    assert stack.gateway_rows() == 0


@pytest.mark.parametrize(
    "path", ["/v1/supervision/flows", "/v1/supervision/flows/{flow_id}/appeals"]
)
def test_the_supervision_routes_for_buyers_and_sellers_say_so(path):
    (route,) = [r for r in ROUTES if r.path == path and r.who != AUTHENTICATED]
    assert set(route.roles) == {BUYER, SELLER}
    assert OPERATOR not in route.roles
