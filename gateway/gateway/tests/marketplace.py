"""What the gateway's interface tests do again and again, over real HTTP: sign up and
in, set up a seller with a published product, top up a buyer, place an order, check an
error answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests

from mercato_testing import payments

PASSWORD = "correct horse battery"
# what a client must never send Mercato: the card itself (it goes to the card provider)
RAW_CARD = {"number": payments.GOOD, "expiry": payments.EXPIRY, "cvc": payments.CVC}

# one specification, "Standard": monthly 1500, yearly 15000, one-time 90000, 1-100 servers
PRODUCT: dict[str, Any] = {
    "name": "Acme Backup for ECS",
    "summary": "Incremental backups of cloud servers.",
    "description": "Backs up every disk of your ECS servers every hour.",
    "category": "storage",
    "delivery_method": "saas",
    "service_supervision": False,
    "product_guide_url": "https://acme.test/guide",
    "terms": "Backups are kept 30 days.",
    "saas_endpoint_url": "https://backup.acme.test/mercato/saas",
    "specifications": [
        {
            "name": "Standard",
            "prices": [
                {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 1500},
                {"billing_mode": "yearly_monthly", "period_unit": "year", "amount": 15000},
                {"billing_mode": "one_time", "amount": 90000},
            ],
            "quantity": {"name": "servers", "min": 1, "max": 100},
        }
    ],
}


def money(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


@dataclass
class Client:
    """One signed-in account, talking to the gateway."""

    stack: Any
    account: dict[str, Any]
    token: str

    @property
    def id(self) -> str:
        return self.account["id"]

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**bearer(self.token), **kwargs.pop("headers", {})}
        return self.stack.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs) -> requests.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, response: requests.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def balance(self) -> dict[str, Any]:
        return self.ok(self.get("/v1/billing/balance"))

    def transactions(self) -> list[dict[str, Any]]:
        return self.ok(self.get("/v1/billing/transactions"))["items"]

    def order(self, order_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/v1/orders/{order_id}"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def email() -> str:
    return f"{uuid.uuid4().hex[:12]}@acme.test"


def new_account(**changes) -> dict[str, Any]:
    """A sign-up body: the buyer account "Acme", with an email no one has yet."""
    return {"name": "Acme", "email": email(), "password": PASSWORD, "type": "buyer", **changes}


def sign_in(stack, address: str, password: str = PASSWORD) -> str:
    response = stack.post("/v1/auth/tokens", json={"email": address, "password": password})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def sign_up(stack, type_: str = "buyer", name: str = "Acme") -> Client:
    body = new_account(type=type_, name=name)
    response = stack.post("/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    return Client(stack, response.json(), sign_in(stack, body["email"]))


def seller_with_product(stack, product: dict[str, Any] | None = None) -> tuple[Client, dict]:
    """A seller with a profile and one published product (``PRODUCT`` by default)."""
    seller = sign_up(stack, "seller", name="Acme Cloud")
    seller.ok(
        seller.put(
            "/v1/seller/profile",
            {
                "company_name": "Acme Cloud Ltd",
                "email": "help@acme.test",
                "mobile": "+86 755 2878 0808",
                "support_range": "24x7, English",
                "currency": "USD",
            },
        )
    )
    draft = seller.ok(seller.post("/v1/seller/products", product or PRODUCT), 201)
    published = seller.ok(seller.post(f"/v1/seller/products/{draft['id']}/publish"))
    return seller, published


def card(stack: Any, number: str = payments.GOOD) -> dict[str, str]:
    """A body's ``card``: a token of the test card ``number`` from the card provider the
    stack's billing charges (the simulated one), as a client gets it before paying."""
    provider = stack.market["billing"][0]["CARD_GATEWAY_URL"]
    token = requests.post(
        f"{provider}/v1/tokens",
        json={"number": number, "expiry": payments.EXPIRY, "cvc": payments.CVC},
        timeout=10,
    )
    token.raise_for_status()
    return {"token": token.json()["token"]}


def top_up(buyer: Client, amount: int) -> dict[str, Any]:
    answer = buyer.ok(
        buyer.post("/v1/billing/top-ups", {"amount": money(amount), "card": card(buyer.stack)}),
        201,
    )
    assert answer["status"] == "succeeded", answer
    return answer


def order_body(product: dict[str, Any], **changes) -> dict[str, Any]:
    """Three months of 2 servers of the product's first specification (9000 at PRODUCT's
    prices)."""
    return {
        "product_id": product["id"],
        "specification_id": product["specifications"][0]["id"],
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 3},
        "quantity": 2,
        "accept_terms": True,
        **changes,
    }


def place_order(buyer: Client, product: dict[str, Any], **changes) -> dict[str, Any]:
    return buyer.ok(buyer.post("/v1/orders", order_body(product, **changes)), 201)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The gateway's error answer: ``status``, a JSON body naming ``code`` with a
    message, and the request's id."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-ID"]
    body = response.json()
    assert body["error"] == code, body
    assert body["message"]
    return body
