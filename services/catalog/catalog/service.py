"""The catalog's entrypoints: check the caller, load the input, call one use case, dump.

Each RPC matches one route of the Catalog routes of docs/api.md (the gateway maps them one to
one) or serves another service (``quote`` for orders, ``delivery_settings`` for
provisioning, ``get_request_template`` for supervision). Money is always
``{"amount": <minor units>, "currency": "USD"}``; times are RFC 3339 in UTC; lists
are ``{"items": [...], "total": N, "page": 1, "page_size": 20}``. Errors are
``mercato.errors``: ValidationError names each field (``fields``), Forbidden for a
missing role, NotFound also for what exists but is not the caller's to see.
"""

from __future__ import annotations

from catalog import domain, schemas, usecases
from catalog.models import metadata
from catalog.repository import CatalogRepository
from mercato.contracts import Envelope
from mercato.contracts import catalog as contract
from mercato.db import Database
from mercato.errors import EXPECTED
from mercato.identity import BUYER, OPERATOR, SELLER
from mercato.inbox import handles_event
from mercato.request_keys import RequestKeys
from mercato.service import MercatoService
from mercato.transport import rpc
from mercato.validation import PageSchema, dump, load


class CatalogService(MercatoService):
    name = "catalog"

    db = Database(
        metadata, repositories={"catalog": CatalogRepository, "request_keys": RequestKeys}
    )

    # -- sellers -----------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def upsert_seller_profile(self, payload: dict) -> dict:
        """Create or replace the calling seller's profile (role seller).

        ``{"company_name": "Acme Cloud Ltd", "email": "sales@acme.example",
        "mobile": "+86 755 2878 0808", "support_range": "Mon-Fri 09:00-18:00 UTC+8",
        "currency": "USD"}``; ``mobile``, ``support_range`` and ``currency`` may be
        left out (currency: unchanged, USD for a new profile; it prices the seller's
        new products). Answers the profile: ``{account_id, company_name, email,
        mobile, support_range, currency, created_at, updated_at}``.
        """
        caller = self.caller.require_role(SELLER)
        data = load(contract.SellerProfileRequest, payload)
        profile = usecases.upsert_seller_profile(
            self.db, self.clock, account_id=caller.account_id, **data
        )
        return dump(contract.SellerProfileResponse, profile)

    @rpc(expected_exceptions=EXPECTED)
    def get_seller_profile(self) -> dict:
        """The calling seller's profile (role seller), as ``upsert_seller_profile``
        answers it; NotFound before it has one."""
        caller = self.caller.require_role(SELLER)
        profile = usecases.seller_profile(self.db, account_id=caller.account_id)
        return dump(contract.SellerProfileResponse, profile)

    @rpc(expected_exceptions=EXPECTED)
    def get_seller(self, seller_account_id: str) -> dict:
        """A seller's public details, as its products show them (billing prints them
        on the invoices of the seller's orders): ``{id, company_name, email, mobile,
        support_range}``. NotFound for an account without a seller profile."""
        data = load(contract.SellerIdRequest, {"seller_account_id": seller_account_id})
        profile = usecases.seller_profile(self.db, account_id=data["seller_account_id"])
        return dump(contract.SellerResponse, {**profile, "id": profile["account_id"]})

    @handles_event("iam_agency.account.created")
    def on_account_created(self, event: Envelope) -> None:
        """A new seller account gets a profile named after the account at once."""
        usecases.register_seller_account(
            self.db,
            self.clock,
            account_id=event.data["account_id"],
            name=event.data["name"],
            account_type=event.data["type"],
        )

    # -- a seller's products -----------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_product(self, payload: dict) -> dict:
        """``POST /v1/seller/products`` (role seller): a new draft product.

        ``payload``::

            {"name": "Acme Backup", "summary": "Backups for ECS",
             "description": "…", "category": "storage", "delivery_method": "image",
             "service_supervision": false,
             "product_guide_url": "https://acme.example/guide", "terms": "…",
             "specifications": [{"name": "Standard",
                 "prices": [{"billing_mode": "yearly_monthly", "period_unit": "month",
                             "amount": 1500},
                            {"billing_mode": "yearly_monthly", "period_unit": "year",
                             "amount": 15000},
                            {"billing_mode": "pay_per_use", "period_unit": "hour",
                             "amount": 3},
                            {"billing_mode": "one_time", "amount": 90000}],
                 "quantity": {"name": "servers", "min": 1, "max": 100}}]}

        ``amount`` is in minor units of the seller's currency; ``period_unit`` is
        month or year for yearly_monthly, hour for pay_per_use, absent for one_time;
        ``quantity`` is optional. A saas product may carry ``"saas_endpoint_url":
        "https://acme.example/saas"`` (and must, to be published): the endpoint Mercato
        calls to deliver it, https or plain http to a loopback host; any other
        product must not. Answers the product as ``get_product`` does plus its
        ``saas_endpoint_url`` (the seller's own view), with ``status: "draft"`` and
        each specification's ``id``. 422 SELLER_PROFILE_REQUIRED if the seller has
        no profile yet.
        """
        caller = self.caller.require_role(SELLER)
        data = load(contract.CreateProductRequest, payload)
        product = usecases.create_product(
            self.db,
            self.clock,
            seller_account_id=caller.account_id,
            product=data,
            request_key=self.caller.request_key,
        )
        return dump(contract.SellerProductDetailsResponse, product)

    @rpc(expected_exceptions=EXPECTED)
    def publish_product(self, product_id: str) -> dict:
        """``POST /v1/seller/products/{id}/publish`` (the product's seller): draft ->
        published, announced as catalog.product.published. Answers the product as
        ``create_product`` does. NotFound for another seller's product; Conflict
        unless it is a draft; 422 SAAS_ENDPOINT_REQUIRED for a saas product without
        its ``saas_endpoint_url``."""
        caller = self.caller.require_role(SELLER)
        data = load(schemas.ProductIdSchema, {"product_id": product_id})
        product = usecases.publish_product(
            self.db,
            self.clock,
            seller_account_id=caller.account_id,
            request_key=self.caller.request_key,
            **data,
        )
        return dump(contract.SellerProductDetailsResponse, product)

    @rpc(expected_exceptions=EXPECTED)
    def set_request_template(self, product_id: str, payload: dict) -> dict:
        """``PUT /v1/seller/products/{id}/request-template`` (the product's seller):
        ``{"template": "Company name:\\nServers to protect:"}``, 0 to 5,000 characters,
        what a buyer is asked to write in a service request for the product; an empty
        one removes it. Any status. Answers ``{product_id, template}`` (template null
        once removed). NotFound for another seller's product."""
        caller = self.caller.require_role(SELLER)
        data = load(contract.RequestTemplateRequest, payload)
        ids = load(schemas.ProductIdSchema, {"product_id": product_id})
        answer = usecases.set_request_template(
            self.db, self.clock, seller_account_id=caller.account_id, **ids, **data
        )
        return dump(contract.RequestTemplateResponse, answer)

    @rpc(expected_exceptions=EXPECTED)
    def delist_product(self, product_id: str, payload: dict) -> dict:
        """Operators take a published product off the marketplace: ``{"reason": …}`` is
        kept and shown to its seller; published -> delisted, announced as
        catalog.product.changed. Answers the product; Conflict unless it is published."""
        caller = self.caller.require_role(OPERATOR)
        data = load(schemas.DelistSchema, {**payload, "product_id": product_id})
        product = usecases.delist_product(
            self.db,
            self.clock,
            operator_account_id=caller.account_id,
            request_key=self.caller.request_key,
            **data,
        )
        return dump(contract.ProductResponse, product)

    @rpc(expected_exceptions=EXPECTED)
    def list_seller_products(self, query: dict | None = None) -> dict:
        """``GET /v1/seller/products`` (role seller): the caller's products in any
        status, newest first. ``query``: ``{page, page_size}``, ``page`` >= 1,
        ``page_size`` 1..100 (digits as strings are accepted; default the first 20).
        Answers ``{items, total, page, page_size}``; an item is
        ``{id, name, status, category, delivery_method, service_supervision,
        saas_endpoint_url, request_template, billing_modes, lowest_price,
        delist_reason, created_at, updated_at, published_at, delisted_at}``."""
        caller = self.caller.require_role(SELLER)
        paging = load(PageSchema, query)
        page_ = usecases.list_seller_products(
            self.db, seller_account_id=caller.account_id, **paging
        )
        return dump(contract.SellerProductPage, page_)

    # -- buyers' catalogue ---------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def search_products(self, query: dict | None = None) -> dict:
        """``GET /v1/products`` (anyone): published products.

        ``query`` holds the query string, every key optional: ``q`` (words to find
        in the name, summary, description or seller's company name; ``or`` between
        words for alternatives), ``delivery_method``, ``category``, ``billing_mode``,
        ``seller_id``, ``min_price``/``max_price`` (minor units, on the product's
        lowest price), ``service_supervision``, ``sort`` (relevance, price_asc,
        price_desc, newest; relevance without ``q`` is newest), ``page``,
        ``page_size`` (1..100, default 20). Values may be strings (``"true"``,
        ``"1500"``); empty ones are ignored. Answers ``{items, total, page,
        page_size}``; an item is ``{id, name, summary, category, delivery_method,
        service_supervision, seller: {id, company_name}, billing_modes,
        lowest_price, published_at}``.
        """
        data = load(contract.ProductSearchQuery, query)
        criteria = domain.SearchCriteria(text=domain.parse_text_query(data.pop("q", None)), **data)
        found = usecases.search_products(self.db, criteria)
        return dump(contract.ProductSummaryPage, found)

    @rpc(expected_exceptions=EXPECTED)
    def get_product(self, product_id: str) -> dict:
        """``GET /v1/products/{id}`` (anyone): ``{id, status, name, summary,
        description, category, delivery_method, service_supervision,
        product_guide_url, terms, seller: {id, company_name, email, mobile,
        support_range}, specifications: [{id, name, prices: [{billing_mode,
        period_unit, price: {amount, currency}}], quantity: {name, min, max} or
        null}], billing_modes, lowest_price, delist_reason, created_at, updated_at,
        published_at, delisted_at}``. A draft or delisted product is NotFound except
        to its seller and operators. Never the saas endpoint, even to its seller: the
        gateway keeps this answer for every caller."""
        data = load(schemas.ProductIdSchema, {"product_id": product_id})
        product = usecases.product_details(self.db, viewer=self.caller.identity, **data)
        return dump(contract.ProductResponse, product)

    # -- a buyer's saved list --------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def save_product(self, payload: dict) -> dict:
        """``POST /v1/saved-products`` ``{product_id}`` (role buyer): "Save to List".
        Answers ``{product_id, saved_at}``; saving again answers the first. NotFound
        for a product buyers cannot see."""
        caller = self.caller.require_role(BUYER)
        data = load(contract.SaveProductRequest, payload)
        saved = usecases.save_product(
            self.db, self.clock, buyer_account_id=caller.account_id, **data
        )
        return dump(contract.SavedResponse, saved)

    @rpc(expected_exceptions=EXPECTED)
    def list_saved_products(self, query: dict | None = None) -> dict:
        """``GET /v1/saved-products`` (role buyer): "My Saved List", last saved first.
        ``query``: ``{page, page_size}`` as ``list_seller_products`` takes it.
        Answers ``{items, total, page, page_size}``; an item is ``{product_id, name,
        status, seller: {id, company_name}, delivery_method, service_supervision,
        specifications (as get_product), lowest_price, saved_at}``: all the Buy
        button needs. A delisted product stays listed with its status."""
        caller = self.caller.require_role(BUYER)
        paging = load(PageSchema, query)
        page_ = usecases.list_saved_products(self.db, buyer_account_id=caller.account_id, **paging)
        return dump(contract.SavedProductPage, page_)

    @rpc(expected_exceptions=EXPECTED)
    def remove_saved_product(self, product_id: str) -> None:
        """``DELETE /v1/saved-products/{product_id}`` (role buyer); NotFound if it is
        not in the caller's list."""
        caller = self.caller.require_role(BUYER)
        data = load(schemas.ProductIdSchema, {"product_id": product_id})
        usecases.remove_saved_product(self.db, buyer_account_id=caller.account_id, **data)

    # -- quotes --------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def quote(self, payload: dict) -> dict:
        """The price of a configuration of a published product (orders call this to
        fix the price into an order; anyone may ask).

        ``payload``: ``{"product_id": "prd_…", "specification_id": "spc_…",
        "billing_mode": "yearly_monthly", "period": {"unit": "month", "count": 3},
        "quantity": 10}``. ``period`` only for yearly_monthly (month: 1-11, year:
        1-5, and the specification must have that unit's price); ``quantity`` within
        the specification's bounds, 1 (the default) when it has none.

        Answers ``{product_id, product_name, seller_account_id, seller_company_name,
        delivery_method, service_supervision, product_guide_url, specification_id,
        specification_name, billing_mode, period: {unit, count} or null, quantity,
        unit_price: {amount, currency}, amount: {amount, currency}}``: amount = unit
        price x period count x quantity (yearly_monthly), unit price x quantity
        (one_time), or the hourly rate x quantity, the price of one hour
        (pay_per_use). NotFound for an unknown or unpublished product or a
        specification not its own; ValidationError naming ``billing_mode``,
        ``period``, ``period.unit``, ``period.count`` or ``quantity`` otherwise.
        """
        data = load(contract.QuoteRequest, payload)
        return dump(contract.QuoteResponse, usecases.quote(self.db, **data))

    # -- delivery ------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def delivery_settings(self, product_id: str) -> dict:
        """What delivering a published or delisted product needs (provisioning's sweeps
        call this as the service, the gateway as the buyer of a purchased app for its
        seller's contact, so no particular caller is required; no route leads here).

        Answers ``{product_id, seller_account_id, delivery_method,
        service_supervision, saas_endpoint_url, product_guide_url, seller:
        {company_name, email, mobile}}``; ``saas_endpoint_url`` is null unless the
        product is saas. A delisted product still answers: a paid order of it must
        still be delivered. NotFound for an unknown product or a draft.
        """
        data = load(schemas.ProductIdSchema, {"product_id": product_id})
        return dump(contract.DeliverySettingsResponse, usecases.delivery_settings(self.db, **data))

    @rpc(expected_exceptions=EXPECTED)
    def get_request_template(self, product_id: str) -> dict:
        """What a buyer is asked to write in a service request for a published or
        delisted product (supervision calls this; no gateway route leads here, and no
        caller is required, as for ``delivery_settings``). Answers ``{product_id,
        template}``, ``template`` null when its seller set none. NotFound for an
        unknown product or a draft."""
        data = load(schemas.ProductIdSchema, {"product_id": product_id})
        return dump(contract.RequestTemplateResponse, usecases.request_template(self.db, **data))
