"""orders' entrypoints: load and check the input, call one use case, dump."""

from __future__ import annotations

import datetime as dt

from nameko.dependency_providers import Config

from mercato.contracts import orders as contract
from mercato.db import Database
from mercato.errors import EXPECTED, Forbidden, NotFound
from mercato.identity import BUYER, SELLER, Identity
from mercato.inbox import handles_event
from mercato.service import MercatoService
from mercato.timers import configured_timer
from mercato.transport import TimedRpcProxy, rpc
from mercato.validation import PageSchema, dump, load
from orders import (
    auto_renewal,
    lifecycle,
    moves,
    projects,
    renewals,
    schemas,
    unsubscriptions,
    upgrades,
    usecases,
)
from orders.models import metadata
from orders.repository import REPOSITORIES

PAYMENT_WINDOW_KEY = "ORDER_PAYMENT_WINDOW_HOURS"
DEFAULT_PAYMENT_WINDOW_HOURS = 24
# how often unpaid orders past their payment window are looked for: an order is
# cancelled at most this long after its window passed (or the test clock moved past it)
EXPIRY_SWEEP_KEY = "ORDER_EXPIRY_SWEEP_SECONDS"
DEFAULT_EXPIRY_SWEEP_SECONDS = 5
# how long after a pay request marked its attempt it may still reach billing; past it,
# an attempt billing has no payment of no longer holds its order
ATTEMPT_BUDGET_KEY = "ORDER_PAYMENT_ATTEMPT_BUDGET_SECONDS"
DEFAULT_ATTEMPT_BUDGET_SECONDS = 30
# how often the subscription lifecycle is swept (expiries, freezes, releases)
SUBSCRIPTION_SWEEP_KEY = "SUBSCRIPTION_SWEEP_SECONDS"
DEFAULT_SUBSCRIPTION_SWEEP_SECONDS = 5
# how long an upgrade quote binds its price
UPGRADE_QUOTE_VALID_KEY = "UPGRADE_QUOTE_VALID_MINUTES"
DEFAULT_UPGRADE_QUOTE_VALID_MINUTES = 30
# how often subscriptions due for an automatic renewal are looked for (the lifecycle
# sweep's setting)
AUTO_RENEW_SWEEP_KEY = "SUBSCRIPTION_SWEEP_SECONDS"
DEFAULT_AUTO_RENEW_SWEEP_SECONDS = 5
# how often the age of the oldest approved, not yet refunded unsubscription is read
UNSUBSCRIPTION_REFUND_WATCH_KEY = "UNSUBSCRIPTION_REFUND_WATCH_SECONDS"
DEFAULT_UNSUBSCRIPTION_REFUND_WATCH_SECONDS = 15


class OrdersService(MercatoService):
    name = "orders"

    db = Database(metadata, repositories=REPOSITORIES)
    config = Config()
    catalog = TimedRpcProxy("catalog")
    iam = TimedRpcProxy("iam_agency")
    # outside billing's own budget for the card provider (docs/operations.md, "Timeouts")
    billing = TimedRpcProxy("billing", timeout=10.0, setting="ORDERS_BILLING_TIMEOUT_SECONDS")
    provisioning = TimedRpcProxy("provisioning")

    @rpc(expected_exceptions=EXPECTED)
    def place_order(self, payload: dict) -> dict:
        """Place an order for one configuration (docs/api.md ``POST /v1/orders``)."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.PlaceOrderRequest, payload)
        window = dt.timedelta(
            hours=float(self.config.get(PAYMENT_WINDOW_KEY, DEFAULT_PAYMENT_WINDOW_HOURS))
        )
        order = usecases.place_order(
            self.db,
            self.clock,
            buyer=buyer,
            request=request,
            catalog=self.catalog,
            iam=self._projects_of(buyer),
            billing=self.billing,
            payment_window=window,
            agencies=self.iam,
            provisioning=self.provisioning,
            request_key=self.caller.request_key,
        )
        return dump(schemas.OrderOut, self._named_order(order))

    @rpc(expected_exceptions=EXPECTED)
    def quote_order(self, payload: dict) -> dict:
        """What an order would cost now, itemised (docs/api.md ``POST /v1/orders/quotes``)."""
        self.caller.require_role(BUYER)
        request = load(contract.OrderQuoteRequest, payload)
        quote = usecases.quote_order(request=request, catalog=self.catalog)
        return dump(contract.OrderQuoteResponse, quote)

    @rpc(expected_exceptions=EXPECTED)
    def pay_order(self, order_id: str, payload: dict) -> dict:
        """Pay an unpaid order: ``{payment_method, card?}``; answers the paid order."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.PayOrderRequest, payload)
        order = usecases.pay_order(
            self.db,
            self.clock,
            buyer=buyer,
            order_id=str(order_id),
            request=request,
            billing=self.billing,
            request_key=self.caller.request_key,
            attempt_budget=self._attempt_budget,
        )
        return dump(schemas.OrderOut, self._named_order(order))

    @rpc(expected_exceptions=EXPECTED)
    def cancel_order(self, order_id: str) -> dict:
        buyer = self.caller.require_role(BUYER)
        order = usecases.cancel_order(
            self.db,
            self.clock,
            buyer=buyer,
            order_id=str(order_id),
            billing=self.billing,
            request_key=self.caller.request_key,
            attempt_budget=self._attempt_budget,
        )
        return dump(schemas.OrderOut, self._named_order(order))

    @rpc(expected_exceptions=EXPECTED)
    def get_order(self, order_id: str) -> dict:
        buyer = self.caller.require()
        order = usecases.get_order(self.db, buyer=buyer, order_id=str(order_id))
        return dump(schemas.OrderOut, self._named_order(order))

    @rpc(expected_exceptions=EXPECTED)
    def order_facts(self, order_ids: list) -> dict:
        """Another service's own work only (a caller ``svc_<service>``; anyone else is
        ``Forbidden``): for each of ``order_ids`` (1 to 100) that exists, what its
        ``orders.order.created`` said, and when it was placed::

            {"orders": [{"order_id", "account_id", "payer_account_id",
                         "enterprise_project_id", "amount_due", "lines",
                         "payment_deadline", "type", "subscription_id", "created_at"}]}

        Unknown ids are left out. billing asks it for the orders it never heard of."""
        caller = self.caller.require()
        if not caller.is_service:
            raise Forbidden("only another service's own work may ask for orders' facts")
        data = load(contract.OrderFactsQuery, {"order_ids": order_ids})
        facts = []
        for order_id in dict.fromkeys(data["order_ids"]):
            order = self.db.orders.get(order_id)
            if order is not None:
                facts.append(
                    {
                        **dump(contract.OrderCreatedV1, order.facts()),
                        "created_at": order.created_at.isoformat(),
                    }
                )
        return {"orders": facts}

    @rpc(expected_exceptions=EXPECTED)
    def list_orders(self, query: dict) -> dict:
        """ "My Orders": ``{status?, page, page_size}``."""
        buyer = self.caller.require()
        params = load(contract.OrdersQuery, query)
        page = usecases.list_orders(self.db, buyer=buyer, **params)
        projects.name(self.db, page["items"], lambda order: order["account_id"])
        return dump(schemas.OrderPage, page)

    @rpc(expected_exceptions=EXPECTED)
    def list_seller_orders(self, query: dict) -> dict:
        """The orders of the calling seller's products (``GET /v1/seller/orders``):
        ``{status?, page, page_size}``, newest first; each with the seller's lines only
        and the buyer as ``{account_id, shared_contact}``."""
        seller = self.caller.require_role(SELLER)
        params = load(contract.SellerOrdersQuery, query)
        return dump(
            schemas.SellerOrderPage, usecases.list_seller_orders(self.db, seller=seller, **params)
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_seller_order(self, order_id: str) -> dict:
        """One order of the calling seller's products; NotFound for any other."""
        seller = self.caller.require_role(SELLER)
        return dump(
            schemas.SellerOrderOut,
            usecases.get_seller_order(self.db, seller=seller, order_id=str(order_id)),
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_purchased_apps(self, query: dict) -> dict:
        """ "Purchased Apps": one row per subscription."""
        buyer = self.caller.require()
        params = load(PageSchema, query)
        page = usecases.list_purchased_apps(
            self.db, buyer=buyer, periods=lifecycle.periods_from(self.config), **params
        )
        projects.name(self.db, page["items"], lambda _app: buyer.account_id)
        return dump(contract.SubscriptionPage, page)

    @rpc(expected_exceptions=EXPECTED)
    def get_purchased_app(self, subscription_id: str) -> dict:
        buyer = self.caller.require()
        app = usecases.get_purchased_app(
            self.db,
            buyer=buyer,
            subscription_id=str(subscription_id),
            periods=lifecycle.periods_from(self.config),
        )
        projects.name(self.db, [app], lambda _app: buyer.account_id)
        return dump(contract.SubscriptionResponse, app)

    @handles_event(
        "billing.payment.succeeded",
        # the usual case: the pay request recorded this payment already
        already_applied=lambda service, event: usecases.is_payment_recorded(
            service.db, order_id=event.data["order_id"], payment_id=event.data["payment_id"]
        ),
    )
    def on_payment_succeeded(self, event) -> None:
        """Complete orders whose pay request did not see the payment finish."""
        usecases.record_payment(
            self.db,
            self.clock,
            order_id=event.data["order_id"],
            payment_id=event.data["payment_id"],
            payment_method=event.data["payment_method"],
        )

    @handles_event("billing.payment.failed")
    def on_payment_failed(self, event) -> None:
        """A payment that was pending failed: the order may be paid again."""
        usecases.clear_failed_payment(self.db, order_id=event.data["order_id"])

    @handles_event("provisioning.delivery.succeeded")
    def on_delivery_succeeded(self, event) -> None:
        """A purchased app was delivered: enable it (or await acceptance)."""
        usecases.deliver_subscription(
            self.db,
            self.clock,
            subscription_id=event.data["subscription_id"],
            starts_at=event.data.get("starts_at"),
            expires_at=event.data.get("expires_at"),
        )

    @handles_event("provisioning.delivery.failed")
    def on_delivery_failed(self, event) -> None:
        """A purchased app could not be delivered: cancel the order (billing refunds)."""
        usecases.cancel_undelivered_order(
            self.db,
            self.clock,
            subscription_id=event.data["subscription_id"],
            reason=event.data["reason"],
        )

    # -- service supervision --

    @handles_event("supervision.flow.started")
    def on_flow_started(self, event) -> None:
        """A supervised service's order is delivering while its seller works."""
        usecases.supervision_started(
            self.db, self.clock, order_id=event.data["order_id"], step=event.data["step"]
        )

    @handles_event("supervision.flow.service_provided")
    def on_service_provided(self, event) -> None:
        usecases.supervised_service_provided(self.db, self.clock, order_id=event.data["order_id"])

    @handles_event("supervision.flow.completed")
    def on_flow_completed(self, event) -> None:
        """Accepted: the purchased app is enabled and the order completed."""
        usecases.supervision_completed(
            self.db, self.clock, subscription_id=event.data["subscription_id"]
        )

    @handles_event("supervision.flow.closed")
    def on_flow_closed(self, event) -> None:
        """Refunded on appeal: the order is cancelled and billing refunds the amount. A
        flow closed because the order was cancelled already asks nothing."""
        refund = event.data.get("refund")
        if refund is not None:
            usecases.refund_on_appeal(
                self.db,
                self.clock,
                order_id=event.data["order_id"],
                refund_amount=refund["amount"],
                reason=event.data["reason"],
            )

    # -- enterprise projects: the copy, names, moves --

    @handles_event("iam_agency.enterprise_project.created")
    def on_enterprise_project_created(self, event) -> None:
        """Keep the new project in the copy (the higher revision wins)."""
        projects.keep(self.db, event.data)

    @handles_event("iam_agency.enterprise_project.disabled")
    def on_enterprise_project_disabled(self, event) -> None:
        """From now on no order may name the project, on every replica."""
        projects.keep(self.db, event.data)

    @handles_event("iam_agency.enterprise_project.enabled")
    def on_enterprise_project_enabled(self, event) -> None:
        projects.keep(self.db, event.data)

    @rpc(expected_exceptions=EXPECTED)
    def move_to_enterprise_project(self, project_id: str, payload: dict) -> dict:
        """``POST /v1/enterprise-projects/{id}/resources``: ``{subscription_ids, mode}``;
        all of them move, or none (``orders.moves``)."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.MoveResourcesRequest, payload)
        return dump(
            contract.MoveResourcesResponse,
            moves.move_to_enterprise_project(
                self.db,
                self.clock,
                buyer=buyer,
                project_id=str(project_id),
                request=request,
                projects=self._projects_of(buyer),
            ),
        )

    def _projects_of(self, buyer: Identity) -> projects.ProjectLookup:
        """The caller's enterprise projects: the copy, else iam-agency asked as the
        caller (``buyer``, whose projects iam-agency answers for)."""
        return projects.ProjectLookup(self.db, self.iam, buyer.account_id, self.clock)

    def _named_order(self, order: dict) -> dict:
        projects.name(self.db, [order], lambda view: view["account_id"])
        return order

    # -- subscription lifecycle, renewals, account time zones --

    @handles_event("iam_agency.account.time_zone_changed")
    def on_time_zone_changed(self, event) -> None:
        """Keep the account's time zone: its next purchases and renewals end at 23:59:59
        there (an expiry already set does not move)."""
        usecases.keep_time_zone(
            self.db,
            account_id=event.data["account_id"],
            time_zone=event.data["time_zone"],
            changed_at=event.data["changed_at"],
        )

    @rpc(expected_exceptions=EXPECTED)
    def quote_renewal(self, subscription_id: str, payload: dict) -> dict:
        """A binding price for renewing a purchased app for a period (docs/api.md
        ``POST /v1/purchased-apps/{id}/renewal-quotes``)."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.RenewalQuoteRequest, payload)
        quote = renewals.quote_renewal(
            self.db,
            self.clock,
            buyer=buyer,
            subscription_id=str(subscription_id),
            request=request,
            catalog=self.catalog,
            valid_for=renewals.quote_validity(self.config),
        )
        return dump(contract.RenewalQuoteResponse, quote)

    @rpc(expected_exceptions=EXPECTED)
    def place_renewal(self, subscription_id: str, payload: dict) -> dict:
        """A renewal order from a quote (``POST /v1/purchased-apps/{id}/renewals``)."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.RenewalRequest, payload)
        window = dt.timedelta(
            hours=float(self.config.get(PAYMENT_WINDOW_KEY, DEFAULT_PAYMENT_WINDOW_HOURS))
        )
        order = renewals.place_renewal(
            self.db,
            self.clock,
            buyer=buyer,
            subscription_id=str(subscription_id),
            request=request,
            billing=self.billing,
            payment_window=window,
            request_key=self.caller.request_key,
        )
        return dump(schemas.OrderOut, self._named_order(order))

    @rpc(expected_exceptions=EXPECTED)
    def list_renewals(self, query: dict) -> dict:
        """``GET /v1/renewals``: what to renew (expiring within ``days``, expired, frozen)."""
        buyer = self.caller.require()
        params = load(contract.RenewalsQuery, query)
        return dump(
            contract.RenewalPage,
            renewals.list_renewals(
                self.db,
                self.clock,
                buyer=buyer,
                periods=lifecycle.periods_from(self.config),
                **params,
            ),
        )

    @configured_timer(SUBSCRIPTION_SWEEP_KEY, DEFAULT_SUBSCRIPTION_SWEEP_SECONDS)
    def run_subscription_lifecycle(self) -> None:
        """Expire, freeze and release what is due, and send the reminders (safe with
        two replicas: each claims its own batches)."""
        lifecycle.run_due(self.db, self.clock, lifecycle.periods_from(self.config))

    # -- auto-renewal and upgrades --

    @rpc(expected_exceptions=EXPECTED)
    def set_auto_renew(self, subscription_id: str, payload: dict) -> dict:
        """``PUT /v1/purchased-apps/{id}/auto-renew``: ``{enabled, period?}``."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.AutoRenewRequest, payload)
        return dump(
            contract.AutoRenewResponse,
            auto_renewal.set_auto_renew(
                self.db,
                self.clock,
                buyer=buyer,
                subscription_id=str(subscription_id),
                request=request,
                catalog=self.catalog,
            ),
        )

    @configured_timer(AUTO_RENEW_SWEEP_KEY, DEFAULT_AUTO_RENEW_SWEEP_SECONDS)
    def renew_automatically(self) -> None:
        """Renew the subscriptions whose automatic renewal is due, from the balance then
        the credit (safe with two replicas: each claims rows the other does not hold)."""
        auto_renewal.sweep(self.db, self.clock, catalog=self.catalog, billing_as=self._billing_for)

    def _billing_for(self, payer):
        """billing, asked as ``payer``: an order's buyer (and its reseller, who pays
        for it; ``auto_renewal.payer_identity``)."""
        self.caller.act_as(payer)
        return self.billing

    @rpc(expected_exceptions=EXPECTED)
    def quote_upgrade(self, subscription_id: str, payload: dict) -> dict:
        """``POST /v1/purchased-apps/{id}/upgrade-quotes``: ``{specification_id,
        quantity}``; a binding price for the time left."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.UpgradeQuoteRequest, payload)
        minutes = float(
            self.config.get(UPGRADE_QUOTE_VALID_KEY, DEFAULT_UPGRADE_QUOTE_VALID_MINUTES)
        )
        return dump(
            contract.UpgradeQuoteResponse,
            upgrades.quote_upgrade(
                self.db,
                self.clock,
                buyer=buyer,
                subscription_id=str(subscription_id),
                request=request,
                catalog=self.catalog,
                validity=dt.timedelta(minutes=minutes),
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def place_upgrade(self, subscription_id: str, payload: dict) -> dict:
        """``POST /v1/purchased-apps/{id}/upgrades``: ``{quote_id, accept_terms}``; the
        upgrade order (a reseller's customer's is paid by the reseller at once)."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.PlaceUpgradeRequest, payload)
        window = dt.timedelta(
            hours=float(self.config.get(PAYMENT_WINDOW_KEY, DEFAULT_PAYMENT_WINDOW_HOURS))
        )
        order = upgrades.place_upgrade(
            self.db,
            self.clock,
            buyer=buyer,
            subscription_id=str(subscription_id),
            request=request,
            billing=self.billing,
            payment_window=window,
            request_key=self.caller.request_key,
        )
        return dump(schemas.OrderOut, self._named_order(order))

    @handles_event("provisioning.instance.upgraded")
    def on_instance_upgraded(self, event) -> None:
        """The seller applied a paid upgrade: the subscription takes the new
        configuration and the upgrade order completes."""
        upgrades.instance_upgraded(
            self.db,
            self.clock,
            subscription_id=event.data["subscription_id"],
            order_id=event.data["upgrade_order_id"],
        )

    @handles_event("provisioning.instance.upgrade_failed")
    def on_instance_upgrade_failed(self, event) -> None:
        """The seller refused a paid upgrade: the order is cancelled, billing refunds it."""
        upgrades.instance_upgrade_failed(
            self.db,
            self.clock,
            subscription_id=event.data["subscription_id"],
            order_id=event.data["upgrade_order_id"],
            reason=event.data["reason"],
        )

    # -- unsubscriptions (guide section 7) --

    @rpc(expected_exceptions=EXPECTED)
    def list_eligible_unsubscriptions(self, query: dict) -> dict:
        """ "My Unsubscriptions": the buyer's purchased apps that may be unsubscribed from
        now, each with ``max_refundable`` (``GET /v1/unsubscriptions/eligible``)."""
        buyer = self.caller.require_role(BUYER)
        params = load(PageSchema, query)
        return dump(
            contract.EligibleUnsubscriptionPage,
            unsubscriptions.eligible(self.db, self.clock, buyer=buyer, **params),
        )

    @rpc(expected_exceptions=EXPECTED)
    def request_unsubscription(self, payload: dict) -> dict:
        """``{subscription_id, refund, reason, reason_detail?, share_contact?}``: the
        request, pending the seller's review (an image's: approved at once)."""
        buyer = self.caller.require_role(BUYER)
        request = load(contract.UnsubscriptionRequest, payload)
        return dump(
            contract.UnsubscriptionResponse,
            unsubscriptions.request_unsubscription(
                self.db, self.clock, buyer=buyer, request=request
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_unsubscriptions(self, query: dict) -> dict:
        """The caller's own requests, newest first: ``{status?, page, page_size}``."""
        buyer = self.caller.require()
        params = load(contract.UnsubscriptionsQuery, query)
        return dump(
            contract.UnsubscriptionPage, unsubscriptions.list_own(self.db, buyer=buyer, **params)
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_unsubscription(self, unsubscription_id: str) -> dict:
        buyer = self.caller.require()
        return dump(
            contract.UnsubscriptionResponse,
            unsubscriptions.get_own(self.db, buyer=buyer, unsubscription_id=str(unsubscription_id)),
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_seller_unsubscriptions(self, query: dict) -> dict:
        """The requests of the calling seller's products, each buyer as ``{account_id,
        shared_contact}`` (the gateway names it, with its email only when shared)."""
        seller = self.caller.require_role(SELLER)
        params = load(contract.UnsubscriptionsQuery, query)
        return dump(
            schemas.SellerUnsubscriptionPage,
            unsubscriptions.list_for_seller(self.db, seller=seller, **params),
        )

    @rpc(expected_exceptions=EXPECTED)
    def approve_unsubscription(self, unsubscription_id: str) -> dict:
        """The seller approves: the first order is cancelled with the refund (billing
        refunds the payer), the subscription released."""
        seller = self.caller.require_role(SELLER)
        return dump(
            contract.UnsubscriptionResponse,
            unsubscriptions.approve(
                self.db, self.clock, seller=seller, unsubscription_id=str(unsubscription_id)
            ),
        )

    @rpc(expected_exceptions=EXPECTED)
    def reject_unsubscription(self, unsubscription_id: str, payload: dict) -> dict:
        """The seller rejects, with ``{reason}``; the buyer may ask again."""
        seller = self.caller.require_role(SELLER)
        request = load(contract.UnsubscriptionRejectionRequest, payload)
        return dump(
            contract.UnsubscriptionResponse,
            unsubscriptions.reject(
                self.db,
                self.clock,
                seller=seller,
                unsubscription_id=str(unsubscription_id),
                reason=request["reason"],
            ),
        )

    @handles_event("billing.refund.completed")
    def on_refund_completed(self, event) -> None:
        """A refund of an order was made: an approved unsubscription of it is refunded."""
        unsubscriptions.refund_completed(self.db, self.clock, order_id=event.data["order_id"])

    @configured_timer(UNSUBSCRIPTION_REFUND_WATCH_KEY, DEFAULT_UNSUBSCRIPTION_REFUND_WATCH_SECONDS)
    def watch_unsubscription_refunds(self) -> None:
        """How long the oldest approved unsubscription has waited for its refund (the
        promise: 3 hours), for the metric an alert watches."""
        unsubscriptions.refresh_refund_age(self.db, self.clock)

    @configured_timer(EXPIRY_SWEEP_KEY, DEFAULT_EXPIRY_SWEEP_SECONDS)
    def cancel_expired_orders(self) -> None:
        """Cancel unpaid orders whose payment window passed (safe with two replicas);
        those with a payment attempt marked are settled by what billing has of it."""
        while usecases.cancel_expired_orders(self.db, self.clock) > 0:
            pass
        usecases.settle_expired_attempts(
            self.db, self.clock, payment_of=self._payment_as_buyer, budget=self._attempt_budget
        )

    def _payment_as_buyer(self, order) -> dict | None:
        """billing's payment of ``order``, asked as its buyer (whose payment it is)."""
        self.caller.act_as(
            Identity(
                account_id=order.account_id,
                user_id=f"svc_{self.name}",
                account_type=BUYER,
                roles=(BUYER,),
            )
        )
        try:
            return self.billing.get_payment(order.id)
        except NotFound:
            return None

    @property
    def _attempt_budget(self) -> dt.timedelta:
        return dt.timedelta(
            seconds=float(self.config.get(ATTEMPT_BUDGET_KEY, DEFAULT_ATTEMPT_BUDGET_SECONDS))
        )
