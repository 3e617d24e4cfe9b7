"""The fixed things of the simulated region: flavors and availability zones."""

from __future__ import annotations

from typing import Any

FLAVORS: list[dict[str, Any]] = [
    {"id": "s6.small.1", "vcpus": 1, "ram": 1024},
    {"id": "s6.medium.2", "vcpus": 1, "ram": 2048},
    {"id": "s6.large.2", "vcpus": 2, "ram": 4096},
    {"id": "s6.xlarge.2", "vcpus": 4, "ram": 8192},
    {"id": "c6.large.2", "vcpus": 2, "ram": 4096},
    {"id": "c6.xlarge.2", "vcpus": 4, "ram": 8192},
    {"id": "c6.2xlarge.2", "vcpus": 8, "ram": 16384},
    {"id": "m6.large.8", "vcpus": 2, "ram": 16384},
]
FLAVORS_BY_ID: dict[str, dict[str, Any]] = {flavor["id"]: flavor for flavor in FLAVORS}
VOLUME_TYPES = ("SATA", "SAS", "SSD", "GPSSD", "ESSD")


def availability_zones(region: str) -> list[str]:
    return [f"{region}a", f"{region}b", f"{region}c"]
