"""supervision's entrypoints: load and check the input, call one use case, dump."""

from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from mercato.contracts import supervision as contract
from mercato.db import Database
from mercato.errors import EXPECTED
from mercato.identity import BUYER, OPERATOR, SELLER
from mercato.inbox import handles_event
from mercato.service import MercatoService
from mercato.terms import SAAS
from mercato.timers import configured_timer
from mercato.transport import rpc
from mercato.validation import PageSchema, dump, load
from supervision import attachments, domain, usecases
from supervision.models import metadata
from supervision.repository import REPOSITORIES
from supervision.settings import Settings

# how often the timers look for flows whose time came (the test clock's promise: due
# work runs within 10 s of a move)
SWEEP_KEY = "SUPERVISION_SWEEP_SECONDS"
DEFAULT_SWEEP_SECONDS = 5.0


class SupervisionSettings(DependencyProvider):
    """The service's settings, read and checked once at start."""

    def setup(self) -> None:
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> Settings:
        return self.settings


class SupervisionService(MercatoService):
    name = "supervision"

    db = Database(metadata, repositories=REPOSITORIES)
    config = Config()
    settings = SupervisionSettings()

    # -- flows --------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_flows(self, query: dict) -> dict:
        """The caller's flows (a seller's: those of its products)."""
        caller = self.caller.require_role(BUYER, SELLER)
        params = load(contract.FlowsQuery, query)
        return dump(contract.FlowPage, usecases.list_flows(self.db, caller=caller, query=params))

    @rpc(expected_exceptions=EXPECTED)
    def get_flow(self, flow_id: str) -> dict:
        caller = self.caller.require()
        flow = usecases.get_flow(self.db, self.clock, caller=caller, flow_id=str(flow_id))
        return dump(contract.FlowResponse, flow)

    @rpc(expected_exceptions=EXPECTED)
    def flows_of_orders(self, payload: dict) -> dict:
        """``{order_ids}``: the flow of each order the caller is a party of."""
        caller = self.caller.require()
        request = load(contract.FlowsOfOrdersRequest, payload)
        found = usecases.flows_of_orders(self.db, caller=caller, order_ids=request["order_ids"])
        return dump(contract.FlowsOfOrders, found)

    @rpc(expected_exceptions=EXPECTED)
    def submit_request(self, flow_id: str, payload: dict) -> dict:
        caller = self.caller.require_role(BUYER)
        request = load(contract.RequestSubmission, payload)
        flow = usecases.submit_request(
            self.db,
            self.clock,
            self.settings,
            caller=caller,
            flow_id=str(flow_id),
            request=request,
            request_key=self.caller.request_key,
        )
        return dump(contract.FlowResponse, flow)

    @rpc(expected_exceptions=EXPECTED)
    def answer_request(self, flow_id: str, payload: dict) -> dict:
        """The seller confirms (``{}``) or sends the request back (``{reject, reason}``)."""
        caller = self.caller.require_role(SELLER)
        answer = load(contract.Confirmation, payload)
        flow = usecases.answer_request(
            self.db,
            self.clock,
            self.settings,
            caller=caller,
            flow_id=str(flow_id),
            answer=answer,
            request_key=self.caller.request_key,
        )
        return dump(contract.FlowResponse, flow)

    @rpc(expected_exceptions=EXPECTED)
    def provide_service(self, flow_id: str, payload: dict) -> dict:
        caller = self.caller.require_role(SELLER)
        provision = load(contract.ProvisionSubmission, payload)
        flow = usecases.provide_service(
            self.db,
            self.clock,
            self.settings,
            caller=caller,
            flow_id=str(flow_id),
            provision=provision,
            request_key=self.caller.request_key,
        )
        return dump(contract.FlowResponse, flow)

    @rpc(expected_exceptions=EXPECTED)
    def accept(self, flow_id: str) -> dict:
        caller = self.caller.require_role(BUYER)
        flow = usecases.accept(
            self.db,
            self.clock,
            caller=caller,
            flow_id=str(flow_id),
            request_key=self.caller.request_key,
        )
        return dump(contract.FlowResponse, flow)

    # -- appeals --------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def open_appeal(self, flow_id: str, payload: dict) -> dict:
        caller = self.caller.require_role(BUYER, SELLER)
        request = load(contract.AppealRequest, payload)
        appeal = usecases.open_appeal(
            self.db,
            self.clock,
            self.settings,
            caller=caller,
            flow_id=str(flow_id),
            request=request,
            request_key=self.caller.request_key,
        )
        return dump(contract.AppealView, appeal)

    @rpc(expected_exceptions=EXPECTED)
    def list_open_appeals(self, query: dict) -> dict:
        self.caller.require_role(OPERATOR)
        params = load(PageSchema, query)
        return dump(contract.AppealPage, usecases.list_open_appeals(self.db, self.clock, **params))

    @rpc(expected_exceptions=EXPECTED)
    def resolve_appeal(self, appeal_id: str, payload: dict) -> dict:
        caller = self.caller.require_role(OPERATOR)
        resolution = load(contract.AppealResolution, payload)
        appeal = usecases.resolve_appeal(
            self.db,
            self.clock,
            self.settings,
            caller=caller,
            appeal_id=str(appeal_id),
            resolution=resolution,
            request_key=self.caller.request_key,
        )
        return dump(contract.AppealView, appeal)

    # -- messages -------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_messages(self, query: dict) -> dict:
        caller = self.caller.require()
        params = load(contract.MessagesQuery, query)
        return dump(
            contract.MessagePage, usecases.list_messages(self.db, caller=caller, query=params)
        )

    @rpc(expected_exceptions=EXPECTED)
    def read_message(self, message_id: str) -> dict:
        caller = self.caller.require()
        message = usecases.read_message(
            self.db, self.clock, caller=caller, message_id=str(message_id)
        )
        return dump(contract.MessageView, message)

    # -- what other services announce ------------------------------------------------------

    @handles_event(
        "orders.order.paid",
        # most orders have nothing supervised: no inbox row, no transaction for those
        concerns=lambda event: any(
            domain.is_supervised(line["delivery_method"], line["service_supervision"])
            for line in event.data["subscriptions"]
        ),
    )
    def on_order_paid(self, event) -> None:
        """A supervised order was paid: its flow starts."""
        usecases.start_flows(
            self.db,
            self.clock,
            self.settings,
            order=event.data,
            paid_at=event.data.get("paid_at") or event.occurred_at,
        )

    @handles_event(
        "provisioning.delivery.succeeded",
        concerns=lambda event: (
            event.data["delivery_method"] == SAAS and event.data["service_supervision"]
        ),
    )
    def on_delivery_succeeded(self, event) -> None:
        """A supervised SaaS tenant exists: the buyer is to accept it."""
        usecases.tenant_delivered(
            self.db, self.clock, self.settings, subscription_id=event.data["subscription_id"]
        )

    @handles_event(
        "orders.order.cancelled",
        # an unpaid order's cancellation never had a flow
        concerns=lambda event: bool(event.data.get("payment_id")),
    )
    def on_order_cancelled(self, event) -> None:
        """A paid order was cancelled (its delivery failed): its flow closes."""
        usecases.order_cancelled(
            self.db, self.clock, order_id=event.data["order_id"], reason=event.data["reason"]
        )

    @handles_event("billing.refund.completed")
    def on_refund_completed(self, event) -> None:
        """A refund was made: the payer is told by a direct message."""
        usecases.refund_made(self.db, self.clock, refund=event.data)

    # -- after the purchase: one direct message per orders event (supervision.notices) ----

    @handles_event("orders.subscription.expiring")
    def on_subscription_expiring(self, event) -> None:
        """7 days before expiry, or 3 days before the freeze: the buyer is reminded."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.expired")
    def on_subscription_expired(self, event) -> None:
        """Expired: the buyer is told until when it stays usable."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.frozen")
    def on_subscription_frozen(self, event) -> None:
        """Frozen: the buyer is told until when its data is kept."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.released")
    def on_subscription_released(self, event) -> None:
        """Released (expired, or unsubscribed): the buyer is told it ended."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.renewed")
    def on_subscription_renewed(self, event) -> None:
        """Renewed (by the buyer or automatically): the new expiry."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.auto_renew_failed")
    def on_auto_renew_failed(self, event) -> None:
        """An auto-renewal failed: why, and the next attempt."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.upgraded")
    def on_subscription_upgraded(self, event) -> None:
        """An upgrade was applied: the new configuration."""
        self._tell_subscription_news(event)

    @handles_event("orders.subscription.upgrade_failed")
    def on_upgrade_failed(self, event) -> None:
        """An upgrade failed: the refund."""
        self._tell_subscription_news(event)

    @handles_event("orders.unsubscription.requested")
    def on_unsubscription_requested(self, event) -> None:
        """A buyer asks to unsubscribe: the seller is to review it."""
        self._tell_subscription_news(event)

    @handles_event("orders.unsubscription.approved")
    def on_unsubscription_approved(self, event) -> None:
        """An unsubscription was approved: the refund within 3 hours."""
        self._tell_subscription_news(event)

    @handles_event("orders.unsubscription.rejected")
    def on_unsubscription_rejected(self, event) -> None:
        """An unsubscription was rejected: the seller's reason."""
        self._tell_subscription_news(event)

    def _tell_subscription_news(self, event) -> None:
        usecases.subscription_news(
            self.db, self.clock, event_type=event.type, event_id=event.id, data=event.data
        )

    # -- what the clock brings --------------------------------------------------------------

    @configured_timer(SWEEP_KEY, DEFAULT_SWEEP_SECONDS)
    def run_due_work(self) -> None:
        """Auto-accept, its notice two days before, the seller's confirmation reminder, the
        buyer's request reminder and the appeal gauges. Safe with two replicas: each claims rows the other skips."""
        while usecases.accept_overdue_flows(self.db, self.clock) > 0:
            pass
        while usecases.send_acceptance_notices(self.db, self.clock) > 0:
            pass
        while usecases.remind_unconfirmed(self.db, self.clock) > 0:
            pass
        while usecases.remind_unrequested(self.db, self.clock) > 0:
            pass
        usecases.refresh_appeal_gauges(self.db, self.clock)

    # -- attachments ------------------------------------------------------------------
    # (the gateway streams the bytes to the object store and back; these say what was
    # stored and who may read it)

    @rpc(expected_exceptions=EXPECTED)
    def register_attachment(self, payload: dict) -> dict:
        """Record an upload the gateway stored (docs/api.md ``POST /v1/attachments``)."""
        uploader = self.caller.require_role(BUYER, SELLER, OPERATOR)
        request = load(contract.AttachmentRegistration, payload)
        return dump(
            contract.AttachmentResponse,
            attachments.register(self.db, self.clock, uploader=uploader, request=request),
        )

    @rpc(expected_exceptions=EXPECTED)
    def download_attachment(self, attachment_id: str) -> dict:
        """Where an attachment's bytes are, if the caller may download it (else 404)."""
        caller = self.caller.require()
        return dump(
            contract.AttachmentDownload,
            attachments.for_download(self.db, caller=caller, attachment_id=str(attachment_id)),
        )
