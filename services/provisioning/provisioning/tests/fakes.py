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

from mercato.errors import Conflict, NotFound
from mercato_testing.fakes import FakeUnitOfWork, InMemoryRepository
from provisioning.cloud.driver import StackExists
from provisioning.deployments import WORKED
from provisioning.domain import FAILED, PENDING
from provisioning.models import (
    CloudKey,
    CredentialReveal,
    Delivery,
    Deployment,
    SellerInterfaceKey,
    SellerSigningKey,
)
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
        # the address each client was pinned to (None: looked up as usual, development)
        self.addresses: list[str | None] = []

    def client(
        self, endpoint: str, access_key: str, secret: str, address: str | None = None
    ) -> FakeSellerClient:
        self.addresses.append(address)
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


# -- images -------------------------------------------------------------------------


class FakeDeploymentRepository(InMemoryRepository):
    """Tables ``deployments`` (by id) and ``cloud_keys`` (by account)."""

    def add(self, deployment: Deployment) -> None:
        self.table("deployments")[deployment.id] = deployment

    def _find(self, **wanted: Any) -> Deployment | None:
        for deployment in self.table("deployments").values():
            if all(getattr(deployment, key) == value for key, value in wanted.items()):
                return deployment
        return None

    def of_order(self, order_id: str, *, lock: bool = False) -> Deployment | None:
        return self._find(order_id=order_id)

    def of_subscription(self, subscription_id: str, *, lock: bool = False) -> Deployment | None:
        return self._find(subscription_id=subscription_id)

    def get(self, deployment_id: str, *, lock: bool = False) -> Deployment | None:
        return self.table("deployments").get(deployment_id)

    def lock(self, deployment_id: str) -> Deployment:
        return self.table("deployments")[deployment_id]

    def lock_due(self, now: dt.datetime, limit: int) -> list[Deployment]:
        due = [
            deployment
            for deployment in self.table("deployments").values()
            if deployment.status in WORKED
            and deployment.next_attempt_at is not None
            and deployment.next_attempt_at <= now
            and (deployment.lease_until is None or deployment.lease_until < now)
        ]
        return sorted(due, key=lambda deployment: deployment.next_attempt_at)[:limit]

    def cloud_key(self, account_id: str) -> CloudKey | None:
        return self.table("cloud_keys").get(account_id)

    def replace_cloud_key(self, account_id: str, key_id: str) -> None:
        self.table("cloud_keys")[account_id].key_id = key_id

    def add_cloud_key_if_missing(self, key: CloudKey) -> CloudKey:
        return self.table("cloud_keys").setdefault(key.account_id, key)


class FakeIamAgency:
    """iam-agency's ``agency_credentials``: temporary credentials allowing everything,
    or ``refuse`` (an error code) for every call."""

    def __init__(self) -> None:
        self.refuse: str | None = None
        self.calls: list[tuple[str, bool]] = []

    def agency_credentials(self, account_id: str, check: bool) -> dict[str, Any]:
        self.calls.append((account_id, check))
        if self.refuse:
            raise Conflict(f"the agency is {self.refuse}", code=self.refuse)
        return {
            "provider": "simulated",
            "region": "sim-region-1",
            "domain_id": f"dom-{account_id}",
            "project_id": f"prj-{account_id}",
            "access_key": "AK",
            "secret_key": "SK",
            "security_token": "TOKEN",
            "expires_at": "2030-01-01T00:00:00+00:00",
            "policy": {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["*"]}]},
        }


class FakeCloud:
    """``CloudDriver`` in memory: one stack per name whose resources the test moves
    (``advance``: every resource created, the stack complete); ``fail_on`` maps a
    method name to the ``CloudError`` it raises once."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.keys: list[str] = []
        self.fail_on: dict[str, Exception] = {}
        self.calls: list[str] = []
        self.deletions_failing = 0  # how many DeleteStack end DELETION_FAILED
        self.quotas: dict[str, int | None] = {"instances": 10, "cores": 40, "ram": 81920}
        self.network: dict[str, int | None] = {"vpc": 5, "subnet": 20, "securityGroup": 20,
                                               "publicIp": 5}  # fmt: skip

    def _called(self, name: str) -> None:
        self.calls.append(name)
        error = self.fail_on.pop(name, None)
        if error is not None:
            raise error

    def server_limits(self, creds):
        self._called("server_limits")
        return dict(self.quotas)

    def network_quotas(self, creds):
        self._called("network_quotas")
        return dict(self.network)

    def flavors(self, creds):
        self._called("flavors")
        return [{"id": "s6.medium.2", "name": "s6.medium.2", "vcpus": 1, "ram_mb": 2048}]

    def image(self, creds, image_id):
        self._called("image")
        return {"id": image_id, "name": image_id} if image_id.startswith("img-") else None

    def vpcs(self, creds):
        self._called("vpcs")
        return [{"id": "vpc-1", "name": "default", "cidr": "10.0.0.0/16", "status": "OK"}]

    def subnets(self, creds, vpc_id):
        self._called("subnets")
        return [{"id": "sub-1", "name": "s", "cidr": "10.0.0.0/24", "vpc_id": "vpc-1",
                 "status": "ACTIVE"}]  # fmt: skip

    def security_groups(self, creds):
        self._called("security_groups")
        return [{"id": "sg-1", "name": "default", "description": ""}]

    def create_key(self, creds, alias):
        self._called("create_key")
        self.keys.append(f"key-{len(self.keys) + 1}")
        return self.keys[-1]

    def key_usable(self, creds, key_id):
        self._called("key_usable")
        return key_id in self.keys

    def encrypt_var(self, creds, key_id, var_key, value):
        self._called("encrypt_var")
        return {"var_key": var_key, "var_value": "c2VhbGVk",
                "encryption": {"kms": {"id": key_id, "cipher_text": "dek"}}}  # fmt: skip

    def create_stack(self, creds, *, name, template, vars_structure, client_token):
        self._called("create_stack")
        if name in self.stacks:
            raise StackExists("exists", code="RF.409", status=409)
        resources = [
            {"type": kind, "name": logical, "id": f"{logical}-id", "physical_name": args.get("name"),
             "status": "CREATION_IN_PROGRESS", "status_message": None, "attributes": {}}
            for kind, named in template["resource"].items()
            for logical, args in named.items()
        ]  # fmt: skip
        self.stacks[name] = {"stack_id": f"stk-{name}", "status": "DEPLOYMENT_IN_PROGRESS",
                             "status_message": None, "resources": resources,
                             "vars": vars_structure}  # fmt: skip
        return self.stacks[name]["stack_id"]

    def advance(self, name: str, *, status: str = "DEPLOYMENT_COMPLETE", message=None) -> None:
        stack = self.stacks[name]
        stack["status"], stack["status_message"] = status, message
        for resource in stack["resources"]:
            resource["status"] = (
                "CREATION_COMPLETE" if status == "DEPLOYMENT_COMPLETE" else "CREATION_FAILED"
            )

    def stack(self, creds, name):
        self._called("stack")
        stack = self.stacks.get(name)
        if stack is None:
            return None
        if stack["status"] == "DELETION_IN_PROGRESS":
            del self.stacks[name]  # deleted by the next look
            return {"stack_id": stack["stack_id"], "status": "DELETION_IN_PROGRESS",
                    "status_message": None}  # fmt: skip
        return {key: stack[key] for key in ("stack_id", "status", "status_message")}

    def stack_resources(self, creds, name):
        self._called("stack_resources")
        return [dict(resource) for resource in self.stacks[name]["resources"]]

    def stack_events(self, creds, name):
        return []

    def delete_stack(self, creds, name):
        self._called("delete_stack")
        if name in self.stacks:
            failing = self.deletions_failing > 0
            self.deletions_failing -= 1
            self.stacks[name]["status"] = "DELETION_FAILED" if failing else "DELETION_IN_PROGRESS"

    def server_addresses(self, creds, server_id):
        return ["192.168.0.10"]

    def public_ip(self, creds, publicip_id):
        return "203.0.113.7"


def fake_unit_of_work() -> FakeUnitOfWork:
    """A unit of work over provisioning's three in-memory repositories."""
    return FakeUnitOfWork(
        deliveries=FakeDeliveryRepository(),
        seller_keys=FakeSellerKeys(),
        deployments=FakeDeploymentRepository(),
    )
