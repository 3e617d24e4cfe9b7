"""The account's time zone end to end: a buyer, a seller and a reseller each choose
theirs with ``PATCH /v1/account`` through the gateway, ``GET /v1/me`` shows it, a name
that is no IANA zone is refused naming ``time_zone``, and an operator may not."""

import pytest
import requests

from mercato_devrun import DEMO_OPERATOR
from tests.e2e.parties import new_party, sign_in

pytestmark = pytest.mark.e2e


def _me(party) -> dict:
    return party.ok("GET", "/v1/me")["account"]


@pytest.mark.parametrize("type_", ["buyer", "seller", "reseller"])
def test_an_account_chooses_its_time_zone_and_me_shows_it(system, type_):
    party = new_party(system, type_)
    assert party.account["time_zone"] == "UTC"  # the sign-up's answer
    assert _me(party)["time_zone"] == "UTC"

    changed = party.ok("PATCH", "/v1/account", {"time_zone": "Asia/Shanghai"})
    again = party.ok("PATCH", "/v1/account", {"time_zone": "Asia/Shanghai"})

    assert changed == again
    assert changed == {
        "id": party.id,
        "name": f"Supervision {type_}",
        "type": type_,
        "time_zone": "Asia/Shanghai",
    }
    assert _me(party)["time_zone"] == "Asia/Shanghai"
    party.ok("PATCH", "/v1/account", {"time_zone": "UTC"})
    assert _me(party)["time_zone"] == "UTC"


def test_a_name_that_is_no_iana_time_zone_is_refused_and_changes_nothing(system):
    buyer = new_party(system, "buyer")
    buyer.ok("PATCH", "/v1/account", {"time_zone": "Europe/Paris"})
    for wrong in ("Mars/Olympus_Mons", "UTC+8", "../../etc/passwd", ""):
        refused = buyer.call("PATCH", "/v1/account", {"time_zone": wrong})
        assert refused.status_code == 400, refused.text
        error = refused.json()
        assert error["error"] == "VALIDATION_ERROR"
        assert error["fields"]["time_zone"] == ["must be an IANA time zone such as Asia/Shanghai"]
    assert _me(buyer)["time_zone"] == "Europe/Paris"


def test_only_a_signed_in_buyer_seller_or_reseller_changes_a_time_zone(system):
    anonymous = requests.patch(
        f"{system.gateway}/v1/account", json={"time_zone": "Asia/Shanghai"}, timeout=15
    )
    assert anonymous.status_code == 401
    operator = sign_in(system, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"])
    refused = requests.patch(
        f"{system.gateway}/v1/account",
        json={"time_zone": "Asia/Shanghai"},
        headers=operator,
        timeout=15,
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "FORBIDDEN"
