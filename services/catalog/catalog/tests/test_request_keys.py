"""A retried request (the same downstream key, as the gateway passes it when it runs a
request again after a failure that may have done the work) answers its first result:
one product created, a publish or a delist that succeeded answers the product, not
409. In a real container on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from catalog.tests.support import OPERATOR, SELLER, product_payload, set_up_seller
from mercato.errors import BusinessRuleViolation, Conflict
from mercato.identity import REQUEST_KEY, Identity
from mercato_testing import signed_context
from mercato_testing.interface import count_rows

pytestmark = pytest.mark.interface


def keyed(config: dict[str, Any], identity: Identity, key: str) -> ServiceRpcProxy:
    """A proxy calling as ``identity`` with the downstream key ``key``."""
    context = signed_context({**identity.to_context(), REQUEST_KEY: key})
    return ServiceRpcProxy("catalog", config, timeout=20, context_data=context)


def new_key() -> str:
    return uuid.uuid4().hex * 2  # 64 hex characters, as the gateway's SHA-256


@pytest.fixture
def seller(catalog):
    config, _clock = catalog
    set_up_seller(config, SELLER, company_name="Acme Cloud Ltd")
    return config


def test_create_product_retried_with_its_key_creates_one_product(seller):
    key = new_key()
    with keyed(seller, SELLER, key) as catalog:
        first = catalog.create_product(product_payload())
        again = catalog.create_product(product_payload())

    assert again["id"] == first["id"]
    assert count_rows(seller, "products") == 1


def test_another_request_with_the_same_key_is_refused_and_creates_nothing(seller):
    key = new_key()
    with keyed(seller, SELLER, key) as catalog:
        catalog.create_product(product_payload())
        with pytest.raises(BusinessRuleViolation) as refused:
            catalog.create_product(product_payload(name="Another product"))

    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert count_rows(seller, "products") == 1


def test_publish_retried_after_it_succeeded_answers_the_product_not_a_conflict(seller):
    with keyed(seller, SELLER, new_key()) as catalog:
        draft = catalog.create_product(product_payload())
    key = new_key()
    with keyed(seller, SELLER, key) as catalog:
        published = catalog.publish_product(draft["id"])
        again = catalog.publish_product(draft["id"])
    with keyed(seller, SELLER, new_key()) as catalog, pytest.raises(Conflict):
        catalog.publish_product(draft["id"])  # another request: it is no draft

    assert published["status"] == again["status"] == "published"
    assert again["published_at"] == published["published_at"]


def test_delist_retried_after_it_succeeded_answers_the_product(seller):
    with keyed(seller, SELLER, new_key()) as catalog:
        product = catalog.publish_product(catalog.create_product(product_payload())["id"])
    key = new_key()
    with keyed(seller, OPERATOR, key) as catalog:
        delisted = catalog.delist_product(product["id"], {"reason": "misleading"})
        again = catalog.delist_product(product["id"], {"reason": "misleading"})

    assert delisted["status"] == again["status"] == "delisted"
