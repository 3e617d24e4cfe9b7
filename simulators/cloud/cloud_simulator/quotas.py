"""Per-account quotas: the limits (``admin.DEFAULT_QUOTAS``, changed with
``PATCH /sim/accounts/{domain_id}/quotas``) and what the account's resources use."""

from __future__ import annotations

from . import catalog
from .admin import account_quotas
from .errors import quota_exceeded
from .store import Store


def usage(store: Store, domain_id: str) -> dict[str, int]:
    used = dict.fromkeys(
        ("instances", "cores", "ram", "volumes", "gigabytes", "vpcs", "subnets",
         "security_groups", "security_group_rules", "public_ips"),
        0,
    )  # fmt: skip
    for resource in store.resources(domain_id):
        kind, data = resource["type"], resource["data"]
        if kind == "server":
            flavor = catalog.FLAVORS_BY_ID.get(data.get("flavor_id"), {})
            used["instances"] += 1
            used["cores"] += int(flavor.get("vcpus", 0))
            used["ram"] += int(flavor.get("ram", 0))
        elif kind == "volume":
            used["volumes"] += 1
            used["gigabytes"] += int(data.get("size", 0))
        elif kind == "vpc":
            used["vpcs"] += 1
        elif kind == "subnet":
            used["subnets"] += 1
        elif kind == "security_group":
            used["security_groups"] += 1
        elif kind == "security_group_rule":
            used["security_group_rules"] += 1
        elif kind == "eip":
            used["public_ips"] += 1
    return used


def require_room(store: Store, domain_id: str, style: str, needs: dict[str, int]) -> None:
    """Refuse (403 in the service's style, naming the quota) when ``needs`` more of a
    quota than the account has left. Call it holding ``store.lock`` together with the
    insert, so two creations cannot both take the last unit."""
    limits = account_quotas(store, domain_id)
    used = usage(store, domain_id)
    for quota, needed in needs.items():
        available = limits.get(quota, 0) - used.get(quota, 0)
        if needed > available:
            raise quota_exceeded(style, quota, needed, max(available, 0))
