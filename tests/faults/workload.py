"""A stream of purchases through the gateway, made as a careful client makes them.

Each purchase has its own ``Idempotency-Key`` for placing and another for paying, and a
request that fails in a way where the work may have been done (a 5xx, a timeout, a cut
connection) is sent again with the same key until it gets an answer or the client's
patience (``PATIENCE_SECONDS``) runs out. Everything the client saw is kept, so the
checker can tell what the system promised from what it did.

Cards go through ``card_for``: today a raw number, and a token from the payment
provider's simulator once the system runs one (``simulators/payments``).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

PASSWORD = "a long faults password"
PATIENCE_SECONDS = 90.0
REQUEST_TIMEOUT = 30.0
GOOD_CARD = "4242424242424242"
# the provider answers later than billing waits for it (simulators/payments): the payment
# stays pending and billing's recovery settles it
SLOW_CARD = "4000000000006975"
# before the provider simulator, billing's embedded gateway knew only a card whose
# answer never came in time
EMBEDDED_SLOW_CARD = "4000000000000119"
SAAS, LICENSE = "saas", "license"
BALANCE, CARD = "balance", "credit_card"
TOP_UP = 2_000_000  # minor units: enough for every balance purchase of a test


class Unanswered(Exception):
    pass


def has_provider(system) -> bool:
    """Whether billing charges cards at the provider's simulator (simulators/payments),
    which then takes the card numbers, or through its own embedded simulation."""
    return system.uses_provider


def card_for(system, number: str = GOOD_CARD) -> dict[str, str]:
    """The ``card`` of a payment body: a token from the provider's simulator when the
    system runs one, else the card itself (as Mercato took cards before tokens)."""
    if not has_provider(system):
        if number == SLOW_CARD:
            number = EMBEDDED_SLOW_CARD
        return {"number": number, "expiry": "12/35", "cvc": "123"}
    issued = requests.post(
        f"{system.payments_url}/v1/tokens",
        json={"number": number, "expiry": "12/35", "cvc": "123"},
        timeout=10,
    )
    issued.raise_for_status()
    return {"token": issued.json()["token"]}


def send(
    system,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    key: str | None = None,
    patience: float = PATIENCE_SECONDS,
    seen: list[int] | None = None,
    params: dict[str, Any] | None = None,
) -> requests.Response:
    """One request, sent again (same key) after any answer that leaves the outcome
    unknown, until an answer or ``patience`` seconds. Every status seen goes to ``seen``
    (0: no answer at all)."""
    deadline = time.monotonic() + patience
    pause = 0.5
    while True:
        try:
            response = requests.request(
                method,
                f"{system.gateway}{path}",
                json=body,
                params=params,
                headers={**(headers or {}), **({"Idempotency-Key": key} if key else {})},
                timeout=REQUEST_TIMEOUT,
            )
            status = response.status_code
        except requests.RequestException:
            response, status = None, 0
        if seen is not None:
            seen.append(status)
        # 429: rate limited; 409 with the key in flight: the first attempt still runs
        retry = status == 0 or status >= 500 or status == 429
        if response is not None and status == 409:
            retry = "still being handled" in response.text
        if not retry:
            assert response is not None
            return response
        if time.monotonic() > deadline:
            raise Unanswered(f"{method} {path}: {seen}")
        time.sleep(pause)
        pause = min(pause * 1.5, 3.0)


@dataclass
class Buyer:
    system: Any
    email: str
    account_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    top_up_tokens: list[str] = field(default_factory=list)

    @classmethod
    def sign_up(cls, system, label: str) -> Buyer:
        buyer = cls(system, f"faults-{label}-{uuid.uuid4().hex[:8]}@example.com")
        created = send(
            system,
            "POST",
            "/v1/accounts",
            {
                "name": f"Faults {label}",
                "email": buyer.email,
                "password": PASSWORD,
                "type": "buyer",
            },
            key=uuid.uuid4().hex,
        )
        assert created.status_code in (201, 409), created.text
        buyer.sign_in()
        buyer.account_id = buyer.get("/v1/me")["account"]["id"]
        return buyer

    def sign_in(self) -> None:
        issued = send(
            self.system, "POST", "/v1/auth/tokens", {"email": self.email, "password": PASSWORD}
        )
        assert issued.status_code == 201, issued.text
        self.headers = {"Authorization": f"Bearer {issued.json()['token']}"}

    def get(self, path: str, **params: Any) -> Any:
        response = send(self.system, "GET", path, headers=self.headers, params=params or None)
        if response.status_code == 401:  # the test clock moved past the token's life
            self.sign_in()
            response = send(self.system, "GET", path, headers=self.headers, params=params or None)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def all(self, path: str, **params: Any) -> list[dict]:
        items: list[dict] = []
        page = 1
        while True:
            answer = self.get(path, page=page, page_size=100, **params)
            items.extend(answer["items"])
            if len(items) >= answer["total"] or not answer["items"]:
                return items
            page += 1

    def top_up(self, amount: int = TOP_UP) -> None:
        card = card_for(self.system)
        if "token" in card:
            self.top_up_tokens.append(card["token"])
        topped = send(
            self.system,
            "POST",
            "/v1/billing/top-ups",
            {"amount": {"amount": amount, "currency": "USD"}, "card": card},
            headers=self.headers,
            key=uuid.uuid4().hex,
        )
        assert topped.status_code == 201, topped.text


@dataclass
class Purchase:
    """One buyer buying one product, and everything it was told."""

    buyer: Buyer
    product: str  # SAAS or LICENSE
    method: str  # BALANCE or CARD
    card_number: str = GOOD_CARD
    place_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    pay_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    place_seen: list[int] = field(default_factory=list)
    pay_seen: list[int] = field(default_factory=list)
    order_id: str | None = None
    placed: bool = False  # the client was answered 201 with the order
    paid: bool = False  # the client was answered 200 with the order paid
    pay_answer: dict | None = None
    paying: bool = False  # its pay request is under way
    card_token: str | None = None  # the provider's token this purchase paid with
    error: str | None = None

    def run(self, products: dict[str, dict]) -> None:
        try:
            self._place(products[self.product])
            if self.order_id:
                self._pay()
        except Unanswered as exc:
            self.error = str(exc)
        except AssertionError as exc:
            self.error = f"unexpected answer: {exc}"

    def _place(self, product: dict) -> None:
        body: dict[str, Any] = {
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "quantity": 1,
            "accept_terms": True,
        }
        if self.product == SAAS:
            body.update(billing_mode="yearly_monthly", period={"unit": "month", "count": 1})
        else:
            body.update(billing_mode="one_time")
        placed = send(
            self.buyer.system,
            "POST",
            "/v1/orders",
            body,
            headers=self.buyer.headers,
            key=self.place_key,
            seen=self.place_seen,
        )
        assert placed.status_code == 201, placed.text
        self.order_id = placed.json()["id"]
        self.placed = True

    def _pay(self) -> None:
        body: dict[str, Any] = {"payment_method": self.method}
        if self.method == CARD:
            body["card"] = card_for(self.buyer.system, self.card_number)
            self.card_token = body["card"].get("token")
        self.paying = True
        try:
            paid = send(
                self.buyer.system,
                "POST",
                f"/v1/orders/{self.order_id}/pay",
                body,
                headers=self.buyer.headers,
                key=self.pay_key,
                seen=self.pay_seen,
            )
        finally:
            self.paying = False
        assert paid.status_code == 200, (paid.status_code, paid.text)
        self.pay_answer = paid.json()
        self.paid = paid.json()["status"] != "unpaid"


def demo_products(system) -> dict[str, dict]:
    """The demo seller's SaaS backup product (delivered by its application) and its
    firewall license (supervised: accepted by the buyer), as a buyer finds them."""
    found = {}
    for kind, query in ((SAAS, "backup"), (LICENSE, "firewall")):
        items = send(system, "GET", "/v1/products", params={"q": query}).json()["items"]
        assert items, f"no demo {kind} product"
        found[kind] = send(system, "GET", f"/v1/products/{items[0]['id']}").json()
    return found


@dataclass
class Stream:
    """``count`` purchases by ``buyers`` buyers, ``concurrency`` at a time, balance and
    card, SaaS and license in turn; the purchases numbered in ``slow_cards`` pay with the
    card the provider answers late (a payment long under way)."""

    system: Any
    count: int = 12
    buyers: int = 3
    concurrency: int = 4
    card_number: str = GOOD_CARD
    methods: tuple[str, ...] = (BALANCE, CARD)
    kinds: tuple[str, ...] = (SAAS, LICENSE)
    slow_cards: tuple[int, ...] = ()
    purchases: list[Purchase] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    _threads: list[threading.Thread] = field(default_factory=list)

    def prepare(self) -> Stream:
        self.products = demo_products(self.system)
        self.customers = [Buyer.sign_up(self.system, f"b{i}") for i in range(self.buyers)]
        for buyer in self.customers:
            buyer.top_up()
        for i in range(self.count):
            self.purchases.append(
                Purchase(
                    self.customers[i % len(self.customers)],
                    self.kinds[i % len(self.kinds)],
                    self.methods[(i // len(self.kinds)) % len(self.methods)],
                    card_number=SLOW_CARD if i in self.slow_cards else self.card_number,
                )
            )
        assert all(self.purchases[i].method == CARD for i in self.slow_cards)
        return self

    def start(self, spacing: float = 0.3) -> Stream:
        """Runs the purchases in the background, one every ``spacing`` seconds at most,
        no more than ``concurrency`` at a time."""
        gate = threading.Semaphore(self.concurrency)
        self.started_at = time.monotonic()

        def one(purchase: Purchase) -> None:
            with gate:
                purchase.run(self.products)

        for purchase in self.purchases:
            thread = threading.Thread(target=one, args=(purchase,), daemon=True)
            self._threads.append(thread)
        threading.Thread(target=self._launch, args=(spacing,), daemon=True).start()
        return self

    def _launch(self, spacing: float) -> None:
        for i, thread in enumerate(self._threads):
            thread.start()
            if i == 1:
                self.started.set()
            time.sleep(spacing)
        self.started.set()

    def in_flight(self) -> int:
        return sum(1 for p in self.purchases if p.order_id and not (p.paid or p.error))

    def wait_until(self, condition, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self):
                return True
            time.sleep(0.1)
        return False

    def join(self, timeout: float = PATIENCE_SECONDS * 2 + 30) -> None:
        deadline = time.monotonic() + timeout
        while not all(t.ident for t in self._threads) and time.monotonic() < deadline:
            time.sleep(0.1)
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    def done(self) -> int:
        return sum(1 for p in self.purchases if p.paid or p.error)
