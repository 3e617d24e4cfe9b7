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


@dataclass(frozen=True)
class EventHandlerQueue:
    """One service-pool ``@handles_event`` handler: its durable queue on the broker."""

    service: str
    method: str
    event_type: str

    @property
    def source(self) -> str:
        return self.event_type.split(".", 1)[0]

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"

    @property
    def queue(self) -> str:
        """nameko's name for it: ``evt-<source>-<event type>--<service>.<method>``."""
        return f"evt-{self.source}-{self.event_type}--{self.service}.{self.method}"


# Every Mercato event handler, so that its queue can be declared and bound before any
# service publishes (``mercato-migrate``, the Helm hook, ``make run``) and so that the
# outbox relay knows which events a Mercato service must receive. Services never
# import each other; libs/mercato/tests/test_topology.py checks this list against the
# services' own handlers.
EVENT_HANDLERS = (
    EventHandlerQueue("billing", "on_order_cancelled", "orders.order.cancelled"),
    # billing's bills: what each order is for, and the names of the projects
    EventHandlerQueue("billing", "on_order_created", "orders.order.created"),
    EventHandlerQueue(
        "billing", "on_enterprise_project_created", "iam_agency.enterprise_project.created"
    ),
    EventHandlerQueue(
        "billing", "on_enterprise_project_disabled", "iam_agency.enterprise_project.disabled"
    ),
    EventHandlerQueue(
        "billing", "on_enterprise_project_enabled", "iam_agency.enterprise_project.enabled"
    ),
    EventHandlerQueue("catalog", "on_account_created", "iam_agency.account.created"),
    EventHandlerQueue("orders", "on_payment_succeeded", "billing.payment.succeeded"),
    EventHandlerQueue("orders", "on_payment_failed", "billing.payment.failed"),
    EventHandlerQueue("orders", "on_delivery_succeeded", "provisioning.delivery.succeeded"),
    EventHandlerQueue("orders", "on_delivery_failed", "provisioning.delivery.failed"),
    EventHandlerQueue("orders", "on_flow_started", "supervision.flow.started"),
    EventHandlerQueue("orders", "on_service_provided", "supervision.flow.service_provided"),
    EventHandlerQueue("orders", "on_flow_completed", "supervision.flow.completed"),
    EventHandlerQueue("orders", "on_flow_closed", "supervision.flow.closed"),
    # orders after the purchase: upgrades applied or refused, refunds of unsubscriptions,
    # the accounts' time zones
    EventHandlerQueue("orders", "on_instance_upgraded", "provisioning.instance.upgraded"),
    EventHandlerQueue(
        "orders", "on_instance_upgrade_failed", "provisioning.instance.upgrade_failed"
    ),
    EventHandlerQueue("orders", "on_refund_completed", "billing.refund.completed"),
    EventHandlerQueue("orders", "on_time_zone_changed", "iam_agency.account.time_zone_changed"),
    # orders' copy of the enterprise projects
    EventHandlerQueue(
        "orders", "on_enterprise_project_created", "iam_agency.enterprise_project.created"
    ),
    EventHandlerQueue(
        "orders", "on_enterprise_project_disabled", "iam_agency.enterprise_project.disabled"
    ),
    EventHandlerQueue(
        "orders", "on_enterprise_project_enabled", "iam_agency.enterprise_project.enabled"
    ),
    EventHandlerQueue("provisioning", "on_order_paid", "orders.order.paid"),
    EventHandlerQueue("provisioning", "on_flow_confirmed", "supervision.flow.confirmed"),
    # provisioning after the purchase: instance actions
    EventHandlerQueue("provisioning", "on_subscription_frozen", "orders.subscription.frozen"),
    EventHandlerQueue("provisioning", "on_subscription_renewed", "orders.subscription.renewed"),
    EventHandlerQueue("provisioning", "on_subscription_released", "orders.subscription.released"),
    EventHandlerQueue("provisioning", "on_subscription_upgrading", "orders.subscription.upgrading"),
    # provisioning: an image's resources follow its moves between enterprise projects
    EventHandlerQueue("provisioning", "on_subscription_moved", "orders.subscription.moved"),
    EventHandlerQueue("supervision", "on_order_paid", "orders.order.paid"),
    EventHandlerQueue("supervision", "on_delivery_succeeded", "provisioning.delivery.succeeded"),
    EventHandlerQueue("supervision", "on_order_cancelled", "orders.order.cancelled"),
    EventHandlerQueue("supervision", "on_refund_completed", "billing.refund.completed"),
    # supervision: a direct message for each move after the purchase
    EventHandlerQueue("supervision", "on_subscription_expiring", "orders.subscription.expiring"),
    EventHandlerQueue("supervision", "on_subscription_expired", "orders.subscription.expired"),
    EventHandlerQueue("supervision", "on_subscription_frozen", "orders.subscription.frozen"),
    EventHandlerQueue("supervision", "on_subscription_released", "orders.subscription.released"),
    EventHandlerQueue("supervision", "on_subscription_renewed", "orders.subscription.renewed"),
    EventHandlerQueue(
        "supervision", "on_auto_renew_failed", "orders.subscription.auto_renew_failed"
    ),
    EventHandlerQueue("supervision", "on_subscription_upgraded", "orders.subscription.upgraded"),
    EventHandlerQueue("supervision", "on_upgrade_failed", "orders.subscription.upgrade_failed"),
    EventHandlerQueue(
        "supervision", "on_unsubscription_requested", "orders.unsubscription.requested"
    ),
    EventHandlerQueue(
        "supervision", "on_unsubscription_approved", "orders.unsubscription.approved"
    ),
    EventHandlerQueue(
        "supervision", "on_unsubscription_rejected", "orders.unsubscription.rejected"
    ),
)
# the event types some Mercato service handles: one of these that no queue takes was lost
CONSUMED_EVENT_TYPES = frozenset(handler.event_type for handler in EVENT_HANDLERS)


def handlers_of(service: str) -> tuple[EventHandlerQueue, ...]:
    return tuple(handler for handler in EVENT_HANDLERS if handler.service == service)
