"""provisioning's repositories and neighbours in memory, for use-case tests that run
in milliseconds::

    uow = FakeUnitOfWork(deliveries=FakeDeliveryRepository(), seller_keys=FakeSellerKeys())

``FakeCatalog`` answers ``delivery_settings`` as catalog does; ``FakeSeller`` plays a
seller's SaaS endpoint (``seller.client`` is the client factory ``run_delivery`` takes)
and keeps every call it was asked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mercato.errors import NotFound
from mercato_testing.fakes import InMemoryRepository
from provisioning.domain import FAILED, PENDING
from provisioning.models import CredentialReveal, Delivery, SellerInterfaceKey, SellerSigningKey
from seller_interface import Activity, ResultCode, SellerAnswer, SellerUnreachable


def _free(delivery: Delivery, now: dt.datetime) -> bool:
    return delivery.lease_until is None or delivery.lease_until < now


class FakeDeliveryRepository(InMemoryRepository):
    """Tables ``deliveries`` (by id) and ``reveals`` (in order)."""

    def exists_for(self, subscription_id: str) -> bool:
        return self.of_subscription(subscription_id) is not None

    def add(self, delivery: Delivery) -> None:
        self.table("deliveries")[delivery.id] = delivery

    def _due(self, status: str, moment: str, now: dt.datetime) -> list[Delivery]:
        """Deliveries in ``status`` whose ``moment`` has come and no one holds, soonest
        first."""
        due = [
            delivery
            for delivery in self.table("deliveries").values()
            if delivery.status == status
            and getattr(delivery, moment) is not None
            and getattr(delivery, moment) <= now
            and _free(delivery, now)
        ]
        return sorted(due, key=lambda delivery: getattr(delivery, moment))

    def lock_due(self, now: dt.datetime, limit: int) -> list[Delivery]:
        return self._due(PENDING, "next_attempt_at", now)[:limit]

    def lock_due_release(self, now: dt.datetime) -> Delivery | None:
        return next(iter(self._due(FAILED, "release_due_at", now)), None)

    def lock(self, delivery_id: str) -> Delivery:
        return self.table("deliveries")[delivery_id]

    def of_subscription(self, subscription_id: str, *, lock: bool = False) -> Delivery | None:
        for delivery in self.table("deliveries").values():
            if delivery.subscription_id == subscription_id:
                return delivery
        return None

    def reveals_since(self, account_id: str, since: dt.datetime) -> int:
        return sum(
            1
            for reveal in self.table("reveals").values()
            if reveal.account_id == account_id and reveal.revealed_at > since
        )

    def add_reveal(self, reveal: CredentialReveal) -> None:
        reveals = self.table("reveals")
        reveals[len(reveals) + 1] = reveal


class FakeSellerKeys(InMemoryRepository):
    """Tables ``interface_keys`` and ``signing_keys``, by seller."""

    def interface_key(self, seller_account_id: str) -> SellerInterfaceKey | None:
        return self.table("interface_keys").get(seller_account_id)

    def replace_interface_key(self, key: SellerInterfaceKey) -> None:
        self.table("interface_keys")[key.seller_account_id] = key

    def signing_key(self, seller_account_id: str) -> SellerSigningKey | None:
        return self.table("signing_keys").get(seller_account_id)

    def add_signing_key_if_missing(self, key: SellerSigningKey) -> SellerSigningKey:
        return self.table("signing_keys").setdefault(key.seller_account_id, key)


class FakeCatalog:
    """catalog's ``delivery_settings``: every product is delivered by ``endpoint``;
    ``prd_gone`` is not found."""

    def __init__(self, endpoint: str = "http://127.0.0.1:8300/saas") -> None:
        self.endpoint = endpoint

    def delivery_settings(self, product_id: str) -> dict[str, Any]:
        if product_id == "prd_gone":
            raise NotFound("product not found")
        return {"product_id": product_id, "saas_endpoint_url": self.endpoint}


class FakeSeller:
    """A seller's SaaS endpoint: one instance per order line, ready once ``ready``;
    ``down`` refuses every call; ``release_answer`` is what releaseInstance answers."""

    def __init__(self) -> None:
        self.ready = True
        self.down = False
        self.release_answer = ResultCode.SUCCESS
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.instances: dict[str, str] = {}  # order line -> instance id

    def client(self, endpoint: str, access_key: str, secret: str) -> FakeSellerClient:
        return FakeSellerClient(self)

    def asked(self, activity: Activity) -> int:
        return sum(1 for name, _ in self.calls if name == activity.value)

    def answer(self, activity: str, fields: dict[str, Any]) -> SellerAnswer:
        self.calls.append((activity, fields))
        if self.down:
            raise SellerUnreachable("connection refused", activity)
        if activity == Activity.NEW_INSTANCE:
            line = fields["orderLineId"]
            instance_id = self.instances.setdefault(line, f"inst_{len(self.instances) + 1}")
            return _answer(ResultCode.SUCCESS, instanceId=instance_id)
        if activity == Activity.QUERY_INSTANCE:
            if not self.ready:
                return _answer(ResultCode.PROCESSING)
            instance_id = fields["instanceId"]
            return _answer(
                ResultCode.SUCCESS,
                appInfo={
                    "frontEndUrl": f"https://seller.example/{instance_id}/",
                    "adminUrl": f"https://seller.example/{instance_id}/admin/",
                    "userName": "buyer-admin",
                    "password": "s3cret-pass",
                },
            )
        return _answer(self.release_answer)


def _answer(code: ResultCode, **data: Any) -> SellerAnswer:
    return SellerAnswer(result_code=code.value, result_msg="", data=data, elapsed_seconds=0.01)


class FakeSellerClient:
    def __init__(self, seller: FakeSeller) -> None:
        self.seller = seller
        self.closed = False

    def __enter__(self) -> FakeSellerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True

    def call(self, activity: str, fields: dict[str, Any]) -> SellerAnswer:
        return self.seller.answer(activity, fields)
