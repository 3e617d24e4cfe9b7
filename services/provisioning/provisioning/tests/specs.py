"""What provisioning's tests share of an image order: the buyers and clock start of the
in-memory tests, the image and deployment specs orders hand over, and the image
subscription of an ``orders.order.paid`` event (test_usecases.py, test_deployments.py
and test_deployments_cloud.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mercato.identity import Identity

START = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
BUYER = Identity("acc_buyer", "usr_buyer", "buyer", ("buyer",))
OTHER = Identity("acc_other", "usr_other", "buyer", ("buyer",))

PASSWORD = "Helix-2026-pass"
HTTPS_RULE = {
    "direction": "ingress", "protocol": "tcp", "port_range": "443",
    "remote_ip_prefix": "0.0.0.0/0",
}  # fmt: skip
INTERNAL_RULE = {
    "direction": "ingress", "protocol": "tcp", "port_range": "8000-8080",
    "remote_ip_prefix": "10.0.0.0/8",
}  # fmt: skip


def image(image_id: str, *rules: dict[str, Any]) -> dict[str, Any]:
    """The product's image as catalog describes it, its recommended group of ``rules``."""
    return {
        "image_id": image_id,
        "flavors": ["s6.medium.2"],
        "min_system_disk_gb": 40,
        "recommended_security_group": {"name": "helix-web", "rules": list(rules)},
    }


def quick(**overrides: Any) -> dict[str, Any]:
    """A quick deployment of one server into the buyer's existing VPC and subnet."""
    return {
        "mode": "quick",
        "region": None,
        "flavor_id": "s6.medium.2",
        "vpc_id": "vpc-1",
        "subnet_id": "sub-1",
        "security_group": "recommended",
        "server_name": "helix-web",
        "admin_password": PASSWORD,
        "system_disk_gb": None,
        "data_disks": [],
        "eip": None,
        "count": 1,
        **overrides,
    }


def image_subscription(subscription_id: str, order_line_id: str) -> dict[str, Any]:
    """The paid order's subscription to the Helix CMS image, a month of it."""
    return {
        "subscription_id": subscription_id,
        "order_line_id": order_line_id,
        "product_id": "prd_helix",
        "product_name": "Helix CMS",
        "seller_account_id": "acc_seller",
        "specification_id": "spc_std",
        "specification_name": "Standard",
        "delivery_method": "image",
        "service_supervision": False,
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 1},
        "quantity": 1,
        "expires_at": None,
    }
