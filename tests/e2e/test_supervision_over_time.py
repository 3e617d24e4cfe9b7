"""End to end on a system whose test clock starts on 2025-03-20, before the process change
of 2025-03-26: the legacy steps, then the clock moved by the operator, the automatic
acceptance with its notice two days before, and the new process for an order paid after
the change. The ``system`` fixture is in conftest.py; time is moved, never waited for."""

from __future__ import annotations

import pytest

from tests.e2e.parties import eventually
from tests.e2e.test_supervision import (
    _buy,
    _operator,
    _order_status,
    _seller_with_service,
)

pytestmark = pytest.mark.e2e

SYSTEM_ENV = {"MERCATO_CLOCK_START": "2025-03-20T09:00:00Z", "SUPERVISION_HOLIDAYS_COUNTRY": "US"}
DAY = 86_400


def test_legacy_steps_then_automatic_acceptance_then_the_new_process(system):
    operator = _operator(system)
    assert operator.ok("GET", "/v1/admin/clock")["now"].startswith("2025-03-20")
    seller, product = _seller_with_service(system)
    buyer, order, flow = _buy(system, product)
    flow_path = f"/v1/supervision/flows/{flow['id']}"

    # paid on 2025-03-20: the older process, no request step; nothing to send back
    assert (flow["process"], flow["step"]) == ("legacy", "awaiting_confirmation")
    refused = seller.call("POST", f"{flow_path}/confirmation", {"reject": True, "reason": "?"})
    assert refused.status_code == 409, refused.text
    assert seller.ok("POST", f"{flow_path}/confirmation", {})["step"] == "in_service"
    provided = seller.ok("POST", f"{flow_path}/provisions", {"description": "Done."}, 201)
    assert provided["accept_by"].startswith("2025-03-27")

    # five days and a minute later: within two days of the automatic acceptance
    operator.ok("POST", "/v1/admin/clock", {"advance_seconds": 5 * DAY + 60})
    buyer.sign_in_again()
    notices = eventually(
        lambda: [
            m for m in buyer.ok("GET", "/v1/messages")["items"] if m["kind"] == "auto_accept_soon"
        ],
        bool,
        timeout=15,
    )
    assert len(notices) == 1 and notices[0]["flow_id"] == flow["id"]
    assert buyer.ok("GET", flow_path)["step"] == "awaiting_acceptance"

    # two days more: accepted by the system, the order completed, the app enabled
    operator = _operator(system)
    operator.ok("POST", "/v1/admin/clock", {"advance_seconds": 2 * DAY})
    buyer.sign_in_again()
    accepted = eventually(
        lambda: buyer.ok("GET", flow_path), lambda f: f["step"] == "completed", timeout=15
    )
    assert accepted["records"][-1]["actor"] == "system"
    _order_status(buyer, order, "completed")
    apps = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps")["items"],
        lambda items: [a["status"] for a in items] == ["enabled"],
    )
    assert apps[0]["order_id"] == order["id"]

    # now 2025-03-27: an order paid after the change starts with the buyer's request
    _buyer, _order, new_flow = _buy(system, product)
    assert (new_flow["process"], new_flow["step"]) == ("2025-03-26", "awaiting_request")
