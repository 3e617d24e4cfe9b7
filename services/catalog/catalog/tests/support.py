"""What the catalog's tests share: callers, product payloads, a unit of work outside
nameko, and starting the service on PostgreSQL or SQLite."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from catalog.models import metadata
from catalog.repository import CatalogRepository
from catalog.service import CatalogService
from mercato.clock import ManualClock
from mercato.db import UnitOfWork
from mercato.identity import Identity
from mercato.migrations import upgrade
from mercato.standalone import standalone_unit_of_work
from mercato.topology import BY_NAME
from mercato_testing import signed_context

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)

SELLER = Identity("acc_seller_acme", "usr_acme", "seller", ("seller",))
OTHER_SELLER = Identity("acc_seller_zeta", "usr_zeta", "seller", ("seller",))
BUYER = Identity("acc_buyer_ann", "usr_ann", "buyer", ("buyer",))
OTHER_BUYER = Identity("acc_buyer_bob", "usr_bob", "buyer", ("buyer",))
OPERATOR = Identity("acc_ops", "usr_ops", "operator", ("operator",))


SAAS_ENDPOINT = "https://saas.acme.example.com/mercato"


# what an image product's specification deploys, and its cloud resources' prices
IMAGE = {
    "image_id": "img-acme-backup-22",
    "flavors": ["s6.medium.2", "s6.large.2"],
    "min_system_disk_gb": 40,
    "recommended_security_group": {
        "name": "acme-backup",
        "rules": [{"direction": "ingress", "protocol": "tcp", "port_range": "443"}],
    },
}
CLOUD_PRICES = [
    {
        "period_unit": unit,
        "flavors": {"s6.medium.2": medium, "s6.large.2": 2 * medium},
        "disk_gb": disk,
        "eip_mbps": eip,
    }
    for unit, medium, disk, eip in (
        ("hour", 4, 1, 1),
        ("month", 2400, 10, 300),
        ("year", 24000, 100, 3000),
    )
]


def product_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``create_product`` body: one specification with every billing mode and
    a quantity dimension of 1..1000 users. A saas product gets ``SAAS_ENDPOINT``
    unless ``saas_endpoint_url`` is given (None for none)."""
    payload: dict[str, Any] = {
        "name": "Acme Backup",
        "summary": "Scheduled backups for ECS servers",
        "description": "Incremental, encrypted backups with one-click restore.",
        "category": "storage",
        "delivery_method": "saas",
        "service_supervision": True,
        "product_guide_url": "https://docs.acme.example.com/backup/guide",
        "terms": "Acme terms of service.",
        "specifications": [
            {
                "name": "Standard",
                "prices": [
                    {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 1500},
                    {"billing_mode": "yearly_monthly", "period_unit": "year", "amount": 15000},
                    {"billing_mode": "pay_per_use", "period_unit": "hour", "amount": 3},
                    {"billing_mode": "one_time", "amount": 90000},
                ],
                "quantity": {"name": "users", "min": 1, "max": 1000},
            }
        ],
    }
    payload.update(copy.deepcopy(overrides))
    if payload["delivery_method"] == "image":
        for spec in payload["specifications"]:
            spec.setdefault("image", copy.deepcopy(IMAGE))
            spec.setdefault("cloud_prices", copy.deepcopy(CLOUD_PRICES))
    if payload["delivery_method"] == "saas" and "saas_endpoint_url" not in overrides:
        payload["saas_endpoint_url"] = SAAS_ENDPOINT
    return payload


def quote_of(product: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A ``quote`` request: three months of 10 users of the product's first
    specification; a field changed to ``...`` is left out."""
    request = {
        "product_id": product["id"],
        "specification_id": product["specifications"][0]["id"],
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 3},
        "quantity": 10,
        **changes,
    }
    return {key: value for key, value in request.items() if value is not ...}


def rpc(config: dict[str, Any], identity: Identity | None = None) -> ServiceRpcProxy:
    """A proxy to the catalog that calls as ``identity`` (anonymous when None)."""
    context = signed_context(identity)
    return ServiceRpcProxy("catalog", config, timeout=20, context_data=context)


def start_catalog(container_factory, config: dict[str, Any]) -> ManualClock:
    container = container_factory(CatalogService, config)
    clock = ManualClock(START)
    replace_dependencies(container, clock=clock)
    container.start()
    return clock


def sqlite_url(directory) -> str:
    """A SQLite catalog database in ``directory``, migrated to head."""
    url = f"sqlite:///{directory}/catalog.sqlite3"
    upgrade(BY_NAME["catalog"], url)
    return url


def seller_email(identity: Identity) -> str:
    return f"sales@{identity.account_id.replace('_', '-')}.example.com"


def set_up_seller(config: dict[str, Any], identity: Identity = SELLER, **profile: Any) -> dict:
    body = {
        "company_name": f"{identity.account_id} Ltd",
        "email": seller_email(identity),
        "mobile": "+86 755 2878 0808",
        "support_range": "Mon-Fri 09:00-18:00 UTC+8",
    }
    body.update(profile)
    with rpc(config, identity) as catalog:
        return catalog.upsert_seller_profile(body)


def list_product(config, identity: Identity = SELLER, publish: bool = True, **overrides) -> dict:
    with rpc(config, identity) as catalog:
        product = catalog.create_product(product_payload(**overrides))
        if publish:
            product = catalog.publish_product(product["id"])
    return product


@contextlib.contextmanager
def unit_of_work(url: str) -> Iterator[UnitOfWork]:
    """The unit of work use cases take (with ``uow.catalog``), over a real database but
    outside nameko, as a command-line tool has it: emitted events go to the outbox."""
    with standalone_unit_of_work(
        url,
        metadata,
        service_name="catalog",
        command="test",
        repositories={"catalog": CatalogRepository},
    ) as uow:
        yield uow
