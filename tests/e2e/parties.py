"""Accounts calling the gateway in end-to-end tests: a signed-in ``Party``, a new one of
each type, and ``eventually`` for what the system does in its own time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from mercato_testing import payments

PASSWORD = "a long e2e password"


def card(system, number: str = payments.GOOD) -> dict[str, str]:
    """A body's ``card``: a token of the test card ``number`` got from the system's card
    provider (the simulated one, ``CARD_GATEWAY_URL``), as a client gets it before
    paying; card numbers never go to Mercato."""
    provider = system.env.get("CARD_GATEWAY_URL", "http://127.0.0.1:8500")
    answer = requests.post(
        f"{provider}/v1/tokens",
        json={"number": number, "expiry": payments.EXPIRY, "cvc": payments.CVC},
        timeout=15,
    )
    assert answer.status_code == 201, answer.text
    return {"token": answer.json()["token"]}


class Party:
    """A signed-in account calling the gateway."""

    def __init__(
        self, system, account: dict | None, headers: dict[str, str], email: str = ""
    ) -> None:
        self.system = system
        self.account = account or {}
        self.headers = headers
        self.email = email

    def sign_in_again(self) -> None:
        """After the test clock moved past a token's lifetime."""
        self.headers = sign_in(self.system, self.email, PASSWORD)

    @property
    def id(self) -> str:
        return self.account["id"]

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.system.gateway}{path}",
            json=body,
            params=params or None,
            headers={
                **self.headers,
                **({"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}),
            },
            timeout=15,
        )

    def upload(self, filename: str, content: bytes) -> requests.Response:
        return requests.post(
            f"{self.system.gateway}/v1/attachments",
            files={"file": (filename, content, "application/octet-stream")},
            headers=self.headers,
            timeout=30,
        )

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **params) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()


def sign_in(system, email: str, password: str) -> dict[str, str]:
    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens", json={"email": email, "password": password}, timeout=15
    )
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}


def new_party(system, type_: str) -> Party:
    email = f"sup-{type_}-{uuid.uuid4().hex[:8]}@example.com"
    created = requests.post(
        f"{system.gateway}/v1/accounts",
        json={"name": f"Supervision {type_}", "email": email, "password": PASSWORD, "type": type_},
        timeout=15,
    )
    assert created.status_code == 201, created.text
    return Party(system, created.json(), sign_in(system, email, PASSWORD), email)


def eventually(read: Callable[[], Any], until: Callable[[Any], bool], timeout: float = 30) -> Any:
    """``read()`` again until ``until`` holds of what it gave, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if until(value) or time.monotonic() > deadline:
            assert until(value), value
            return value
        time.sleep(0.3)
