"""The processes Mercato runs: where each lives, its nameko module and its ports.

Used by the tooling (migrations, ``make run``, the end-to-end tests); services never
import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mercato.config import ROOT


@dataclass(frozen=True)
class Process:
    name: str  # nameko service name, also the event source
    package: str  # importable package
    directory: Path  # holds config.yaml and the package
    ops_port: int  # /metrics, /healthz, /readyz
    service_class: str  # the nameko service class in <package>.service

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yaml"

    @property
    def nameko_target(self) -> str:
        """What ``nameko run`` is given: module and class."""
        return f"{self.package}.service:{self.service_class}"

    @property
    def migrations(self) -> Path:
        return self.directory / self.package / "migrations"

    @property
    def env_prefix(self) -> str:
        """Prefix of this process's own variables in a shared environment (make run)."""
        return self.name.upper()


SERVICES = (
    Process("catalog", "catalog", ROOT / "services" / "catalog", 9101, "CatalogService"),
    Process("orders", "orders", ROOT / "services" / "orders", 9102, "OrdersService"),
    Process(
        "supervision", "supervision", ROOT / "services" / "supervision", 9103, "SupervisionService"
    ),
    Process("billing", "billing", ROOT / "services" / "billing", 9104, "BillingService"),
    Process(
        "provisioning",
        "provisioning",
        ROOT / "services" / "provisioning",
        9105,
        "ProvisioningService",
    ),
    Process("iam_agency", "iam_agency", ROOT / "services" / "iam-agency", 9106, "IamAgencyService"),
)
GATEWAY = Process("gateway", "gateway", ROOT / "gateway", 8000, "GatewayService")
PROCESSES = (*SERVICES, GATEWAY)
BY_NAME = {process.name: process for process in PROCESSES}
