"""The gateway's entrypoints: the public HTTP API (API.md) and its operations endpoints.

Each one is glue: authenticate (every route but sign-up, sign-in and browsing the
catalog needs a caller), read and validate the body or query, call one service, dump
the answer. The role a route needs (seller, buyer, reseller, operator) is checked by
the service it calls, which answers Forbidden. Failures are raised, and
``web.GatewayHttp`` answers them with the status of ``errors.mapped_errors``.
"""

from __future__ import annotations

from nameko.events import BROADCAST, event_handler
from nameko.timer import timer
from werkzeug.wrappers import Request, Response

from gateway import openapi, probes, schemas
from gateway.auth import Authentication
from gateway.errors import json_response
from gateway.idempotency import Idempotency, downstream_key
from gateway.models import metadata
from gateway.product_cache import ProductCacheProvider
from gateway.settings import SettingsProvider
from gateway.web import http, no_content, path_id, read_json, read_query, respond
from mercato.db import Database
from mercato.errors import NotFound, ServiceUnavailable
from mercato.service import MercatoService
from mercato.transport import TimedRpcProxy
from mercato.validation import load

PURGE_INTERVAL_SECONDS = 600


class GatewayService(MercatoService):
    """The public API. Dependencies: ``iam`` answers who a token belongs to and owns
    accounts; ``catalog``, ``orders`` and ``billing`` own what their names say; ``auth``
    keeps validated tokens briefly; ``idempotency`` keeps the answers to POSTs that
    carried an Idempotency-Key, in ``db``."""

    name = "gateway"

    db = Database(metadata)
    iam = TimedRpcProxy("iam_agency")
    catalog = TimedRpcProxy("catalog")
    orders = TimedRpcProxy("orders")
    billing = TimedRpcProxy("billing")
    provisioning = TimedRpcProxy("provisioning")
    # /readyz must answer quickly even when iam-agency does not
    iam_probe = TimedRpcProxy("iam_agency", timeout=probes.IAM_PING_TIMEOUT_SECONDS)
    last_readiness = probes.LastReport()
    settings = SettingsProvider()
    auth = Authentication()
    idempotency = Idempotency()
    # published products' details, dropped when catalog announces a change
    products = ProductCacheProvider()

    # -- accounts and sign-in ------------------------------------------------------

    @http("POST", "/v1/accounts")
    def sign_up(self, request: Request) -> Response:
        """Open a buyer, seller or reseller account with its first user. The email
        must be new (409 EMAIL_TAKEN)."""
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.SignUpRequest, body)
        return self.idempotency.once(
            request, body, lambda: respond(201, schemas.AccountResponse, self.iam.sign_up(payload))
        )

    @http("POST", "/v1/auth/tokens")
    def sign_in(self, request: Request) -> Response:
        """Exchange an email and password for a bearer token (401 if they do not match)."""
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.SignInRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(201, schemas.TokenResponse, self.iam.issue_token(payload)),
        )

    @http("DELETE", "/v1/auth/tokens/current")
    def sign_out(self, request: Request) -> Response:
        """Revoke the bearer token of this request. Other gateway replicas may accept it
        for up to TOKEN_CACHE_SECONDS more."""
        token = self.auth.authenticate(request, self.iam)
        self.auth.sign_out(token, self.iam)
        return no_content()

    @http("GET", "/v1/me")
    def me(self, request: Request) -> Response:
        """The caller's account, user and roles."""
        self.auth.authenticate(request, self.iam)
        return respond(200, schemas.MeResponse, self.iam.me())

    @http("POST", "/v1/reseller/customers")
    def create_reseller_customer(self, request: Request) -> Response:
        """A reseller opens a buyer account whose orders it pays for (reseller only)."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.ResellerCustomerRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                201, schemas.ResellerCustomerResponse, self.iam.create_reseller_customer(payload)
            ),
        )

    @http("POST", "/v1/admin/accounts/<account_id>/credit-limit")
    def set_credit_limit(self, request: Request, account_id: str) -> Response:
        """Set a buyer's credit limit, which enables paying by `credit` (operator only).
        Answers the account's balance with the new limit."""
        self.auth.authenticate(request, self.iam)
        account_id = path_id(account_id, "account")
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.CreditLimitRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                200,
                schemas.BalanceResponse,
                self.billing.set_credit_limit(account_id, payload["amount"]),
            ),
        )

    # -- catalog: sellers ------------------------------------------------------------

    @http("PUT", "/v1/seller/profile")
    def upsert_seller_profile(self, request: Request) -> Response:
        """Create or replace the seller's public profile (seller only). Its `currency`
        prices the products created after it."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.SellerProfileRequest, body)
        return respond(
            200, schemas.SellerProfileResponse, self.catalog.upsert_seller_profile(payload)
        )

    @http("POST", "/v1/seller/products")
    def create_product(self, request: Request) -> Response:
        """Create a product as a draft (seller only; without a seller profile, 422
        SELLER_PROFILE_REQUIRED). Price amounts are minor units of the seller's currency."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.CreateProductRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                201, schemas.SellerProductDetailsResponse, self.catalog.create_product(payload)
            ),
        )

    @http("POST", "/v1/seller/products/<product_id>/publish")
    def publish_product(self, request: Request, product_id: str) -> Response:
        """Publish a draft: buyers can find and buy it from now on (its seller only)."""
        self.auth.authenticate(request, self.iam)
        product_id = path_id(product_id, "product")
        body = read_json(request, self.settings.max_body_bytes)
        load(schemas.EmptyRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                200, schemas.SellerProductDetailsResponse, self.catalog.publish_product(product_id)
            ),
        )

    @http("GET", "/v1/seller/products")
    def list_seller_products(self, request: Request) -> Response:
        """The seller's own products, in any status (seller only)."""
        self.auth.authenticate(request, self.iam)
        query = load(schemas.PageQuery, read_query(request))
        return respond(
            200,
            schemas.SellerProductPage,
            self.catalog.list_seller_products(query["page"], query["page_size"]),
        )

    @http("POST", "/v1/admin/products/<product_id>/delist")
    def delist_product(self, request: Request, product_id: str) -> Response:
        """Take a published product off the marketplace, with the reason (operator only)."""
        self.auth.authenticate(request, self.iam)
        product_id = path_id(product_id, "product")
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.DelistRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                200,
                schemas.ProductResponse,
                self.catalog.delist_product(product_id, payload["reason"]),
            ),
        )

    # -- catalog: buyers -------------------------------------------------------------

    @http("GET", "/v1/products")
    def search_products(self, request: Request) -> Response:
        """Search the published products. Anyone may; a bearer token, if sent, must be
        valid."""
        self.auth.authenticate_if_present(request, self.iam)
        query = load(schemas.ProductSearchQuery, read_query(request))
        return respond(200, schemas.ProductSummaryPage, self.catalog.search_products(query))

    @http("GET", "/v1/products/<product_id>")
    def get_product(self, request: Request, product_id: str) -> Response:
        """A product's details: specifications with their ids and prices, seller, terms.
        Anyone may; a bearer token, if sent, must be valid."""
        self.auth.authenticate_if_present(request, self.iam)
        product_id = path_id(product_id, "product")
        product = self.products.get(product_id)
        if product is None:
            product = self.catalog.get_product(product_id)
            self.products.put(product_id, product)
        return respond(200, schemas.ProductResponse, product)

    @event_handler(
        "catalog", "catalog.product.changed", handler_type=BROADCAST, reliable_delivery=False
    )
    def forget_changed_product(self, event: dict) -> None:
        """Every replica drops its copy of a product that changed (delisted, …)."""
        self.products.forget(event["subject"])

    @event_handler(
        "catalog", "catalog.product.published", handler_type=BROADCAST, reliable_delivery=False
    )
    def forget_published_product(self, event: dict) -> None:
        self.products.forget(event["subject"])

    @http("POST", "/v1/saved-products")
    def save_product(self, request: Request) -> Response:
        """Save a product to "My Saved List" (buyer only); saving it again changes nothing."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.SaveProductRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                201, schemas.SavedResponse, self.catalog.save_product(payload["product_id"])
            ),
        )

    @http("GET", "/v1/saved-products")
    def list_saved_products(self, request: Request) -> Response:
        """ "My Saved List", newest first, with what buying each needs (buyer only)."""
        self.auth.authenticate(request, self.iam)
        query = load(schemas.PageQuery, read_query(request))
        return respond(
            200,
            schemas.SavedProductPage,
            self.catalog.list_saved_products(query["page"], query["page_size"]),
        )

    @http("DELETE", "/v1/saved-products/<product_id>")
    def remove_saved_product(self, request: Request, product_id: str) -> Response:
        """Remove a product from "My Saved List" (buyer only)."""
        self.auth.authenticate(request, self.iam)
        self.catalog.remove_saved_product(path_id(product_id, "saved product"))
        return no_content()

    # -- orders and payment ----------------------------------------------------------

    @http("POST", "/v1/orders")
    def place_order(self, request: Request) -> Response:
        """Place an order for one configuration of a product, at the price of now
        (buyer only). A reseller's customer's order is paid by the reseller at once."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.PlaceOrderRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(201, schemas.OrderResponse, self.orders.place_order(payload)),
        )

    @http("GET", "/v1/orders")
    def list_orders(self, request: Request) -> Response:
        """ "My Orders", newest first; `status=unpaid` gives "Unpaid Orders"."""
        self.auth.authenticate(request, self.iam)
        query = load(schemas.OrdersQuery, read_query(request))
        return respond(200, schemas.OrderPage, self.orders.list_orders(query))

    @http("GET", "/v1/orders/<order_id>")
    def get_order(self, request: Request, order_id: str) -> Response:
        """One of the caller's orders."""
        self.auth.authenticate(request, self.iam)
        order_id = path_id(order_id, "order")
        return respond(200, schemas.OrderResponse, self.orders.get_order(order_id))

    @http("POST", "/v1/orders/<order_id>/pay")
    def pay_order(self, request: Request, order_id: str) -> Response:
        """Pay an unpaid order by balance, card or credit; answers the order, now paid.
        It is charged once, however often this is sent."""
        self.auth.authenticate(request, self.iam)
        order_id = path_id(order_id, "order")
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.PayOrderRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(200, schemas.OrderResponse, self.orders.pay_order(order_id, payload)),
        )

    @http("POST", "/v1/orders/<order_id>/cancel")
    def cancel_order(self, request: Request, order_id: str) -> Response:
        """Cancel an unpaid order; answers the order, now cancelled."""
        self.auth.authenticate(request, self.iam)
        order_id = path_id(order_id, "order")
        body = read_json(request, self.settings.max_body_bytes)
        load(schemas.EmptyRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(200, schemas.OrderResponse, self.orders.cancel_order(order_id)),
        )

    # -- billing ---------------------------------------------------------------------

    @http("GET", "/v1/billing/balance")
    def get_balance(self, request: Request) -> Response:
        """The account's prepaid balance, credit limit and credit used."""
        self.auth.authenticate(request, self.iam)
        return respond(200, schemas.BalanceResponse, self.billing.get_balance())

    @http("POST", "/v1/billing/top-ups")
    def top_up(self, request: Request) -> Response:
        """Add money to the balance from a card. With an Idempotency-Key the card is
        charged once for it, even past the gateway's own memory of the key."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.TopUpRequest, body)
        key = downstream_key(request)
        if key is not None:
            payload["idempotency_key"] = key
        return self.idempotency.once(
            request,
            body,
            lambda: respond(201, schemas.TopUpResponse, self.billing.top_up(payload)),
        )

    @http("GET", "/v1/billing/transactions")
    def list_transactions(self, request: Request) -> Response:
        """The account's ledger movements (payments and top-ups), newest first."""
        self.auth.authenticate(request, self.iam)
        query = load(schemas.PageQuery, read_query(request))
        return respond(
            200,
            schemas.TransactionPage,
            self.billing.list_transactions(query["page"], query["page_size"]),
        )

    # -- purchased apps --------------------------------------------------------------

    @http("GET", "/v1/purchased-apps")
    def list_purchased_apps(self, request: Request) -> Response:
        """ "Purchased Apps": one row per subscription, newest first."""
        self.auth.authenticate(request, self.iam)
        query = load(schemas.PageQuery, read_query(request))
        return respond(200, schemas.PurchasedAppPage, self.orders.list_purchased_apps(query))

    @http("GET", "/v1/purchased-apps/<subscription_id>")
    def get_purchased_app(self, request: Request, subscription_id: str) -> Response:
        """One of the caller's purchased apps: application information (the password
        masked), basic information and the seller's contact."""
        self.auth.authenticate(request, self.iam)
        subscription_id = path_id(subscription_id, "purchased app")
        subscription = self.orders.get_purchased_app(subscription_id)  # 404 if not the caller's
        # the page shows what it can: the subscription is orders', the rest is extra
        try:
            delivered = self.provisioning.get_application(subscription_id)
        except NotFound:  # paid a moment ago: provisioning has not heard of it yet
            delivered = {"delivery_status": "pending"}
        except ServiceUnavailable:
            delivered = {"delivery_status": "unknown"}
        try:
            seller = self.catalog.delivery_settings(subscription["product_id"])["seller"]
        except (NotFound, ServiceUnavailable):
            seller = {"company_name": subscription.get("seller_company_name")}
        return respond(
            200,
            schemas.PurchasedAppDetailsResponse,
            {
                **subscription,
                "application": {
                    **delivered,
                    "product_guide_url": subscription.get("product_guide_url"),
                },
                "basic": {
                    "specification_name": subscription["specification_name"],
                    "delivery_method": subscription["delivery_method"],
                    "resource_status": subscription["status"],
                    "billing_mode": subscription["billing_mode"],
                    "auto_renew": subscription["auto_renew"],
                },
                "seller": seller,
            },
            headers={"Cache-Control": "no-store"},  # it carries the license key
        )

    @http("POST", "/v1/purchased-apps/<subscription_id>/credentials/reveal")
    def reveal_credentials(self, request: Request, subscription_id: str) -> Response:
        """The eye icon: the delivered username and password in the clear. Every reveal
        is recorded (who, when, which request) and limited to a few a minute.

        The one POST that an ``Idempotency-Key`` does not replay: a replayed answer
        would show the password without a recorded reveal, and would keep a copy of it
        in the gateway's store. Revealing again changes nothing but the record."""
        self.auth.authenticate(request, self.iam)
        subscription_id = path_id(subscription_id, "purchased app")
        load(schemas.EmptyRequest, read_json(request, self.settings.max_body_bytes))
        return respond(
            200,
            schemas.CredentialsResponse,
            self.provisioning.reveal_credentials(subscription_id),
            headers={"Cache-Control": "no-store"},
        )

    # -- sellers' keys ---------------------------------------------------------------

    @http("POST", "/v1/seller/interface-credentials")
    def issue_interface_credentials(self, request: Request) -> Response:
        """A new access key and secret for the seller's SaaS endpoints (seller only);
        the secret is in this answer only, and a new pair replaces the old one. With an
        ``Idempotency-Key`` a retried request gets the same pair again (kept encrypted
        by the idempotency store) instead of replacing it once more."""
        self.auth.authenticate(request, self.iam)
        body = read_json(request, self.settings.max_body_bytes)
        load(schemas.EmptyRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(
                201,
                schemas.InterfaceCredentialsResponse,
                self.provisioning.issue_interface_credentials(),
                headers={"Cache-Control": "no-store"},
            ),
        )

    @http("GET", "/v1/sellers/<seller_id>/license-public-key")
    def license_public_key(self, request: Request, seller_id: str) -> Response:
        """The Ed25519 public key that verifies this seller's license keys offline
        (anyone may read it; the seller's own first request creates it)."""
        self.auth.authenticate_if_present(request, self.iam)
        seller_id = path_id(seller_id, "seller")
        return respond(
            200, schemas.LicensePublicKeyResponse, self.provisioning.license_public_key(seller_id)
        )

    # -- operations ----------------------------------------------------------------

    @http("GET", "/healthz")
    def healthz(self, request: Request) -> Response:
        """The process is alive and serving HTTP."""
        return json_response(200, {"status": "ok"})

    @http("GET", "/readyz")
    def readyz(self, request: Request) -> Response:
        """The gateway can serve: its database answers, its consumers are attached and
        iam-agency answers a ping; 503 with the problems otherwise."""
        report = probes.readiness(self.observability, self.iam_probe, self.last_readiness)
        return json_response(200 if report["status"] == probes.READY else 503, report)

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        """Prometheus metrics of this process."""
        body, content_type = self.observability.render_metrics()
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/openapi.json")
    def openapi_document(self, request: Request) -> Response:
        """This API as an OpenAPI 3 document."""
        return json_response(200, openapi.document(type(self)))

    @http("GET", "/docs")
    def docs(self, request: Request) -> Response:
        """This API as a readable page, rendered here from the OpenAPI document."""
        return openapi.docs_response(openapi.document(type(self)))

    @timer(interval=PURGE_INTERVAL_SECONDS)
    def purge_idempotency_records(self) -> None:
        """Delete idempotency records past their TTL (safe on every replica at once)."""
        self.idempotency.purge()
