"""Every route of the public API (docs/api.md) and the gateway's operations endpoints, each
declared once: ``routing.serves`` makes the entrypoints from these, and ``openapi``
the document.

Adding a route is one declaration here and the RPC behind it; its bodies are the
RPC's schemas in ``mercato.contracts``.
"""

from __future__ import annotations

from gateway import attachments, handlers, schemas
from gateway.openapi import (
    ACCOUNTS,
    AGENCIES,
    ATTACHMENTS,
    CATALOG,
    MESSAGES,
    OPERATIONS_TAG,
    ORDERS,
    PROJECTS,
    PURCHASED_APPS,
    SUPERVISION,
    TEST_CLOCK,
)
from gateway.ratelimits import SIGN_IN, SIGN_UP
from gateway.routing import ANYONE, AUTHENTICATED, TOKEN_OPTIONAL, Route
from mercato.contracts import billing, catalog, iam_agency, orders, provisioning, supervision
from mercato.contracts.common import ClockAdvanceRequest, ClockResponse, EmptyRequest
from mercato.identity import BUYER, OPERATOR, RESELLER, SELLER
from mercato.validation import PageSchema

EMAIL_TAKEN = {409: "EMAIL_TAKEN: the email already has an account"}
TOO_MANY_SIGN_UPS = {
    429: "RATE_LIMITED: too many sign-ups for this email or from this address; "
    "`Retry-After` says when to try again"
}
NO_STORE = {"Cache-Control": "no-store"}

ROUTES = (
    # -- accounts and sign-in ---------------------------------------------------------
    Route(
        "POST",
        "/v1/accounts",
        "sign_up",
        summary="Open an account",
        tag=ACCOUNTS,
        who=ANYONE,
        about="Open a buyer, seller or reseller account with its first user. The email "
        "must be new (409 EMAIL_TAKEN).",
        body=iam_agency.SignUpRequest,
        response=iam_agency.AccountResponse,
        status=201,
        errors={**EMAIL_TAKEN, **TOO_MANY_SIGN_UPS},
        rate_limit=SIGN_UP,
        rpc=("iam_agency", "sign_up"),
    ),
    Route(
        "POST",
        "/v1/auth/tokens",
        "sign_in",
        summary="Sign in: get a bearer token",
        tag=ACCOUNTS,
        who=ANYONE,
        about="Exchange an email and password for a bearer token (401 if they do not match).",
        body=iam_agency.SignInRequest,
        response=iam_agency.TokenResponse,
        status=201,
        # the token is a secret: not cached, and not kept for an Idempotency-Key's replay
        headers=NO_STORE,
        errors={
            401: "UNAUTHENTICATED: wrong email or password",
            429: "RATE_LIMITED: too many sign-ins for this email or from this address; "
            "`Retry-After` says when to try again",
        },
        rate_limit=SIGN_IN,
        rpc=("iam_agency", "issue_token"),
    ),
    Route(
        "DELETE",
        "/v1/auth/tokens/current",
        "sign_out",
        summary="Sign out: revoke this bearer token",
        tag=ACCOUNTS,
        who=AUTHENTICATED,
        about="Revoke the bearer token of this request. Other gateway replicas may accept "
        "it for up to TOKEN_CACHE_SECONDS more.",
        status=204,
        handler=handlers.sign_out,
    ),
    Route(
        "GET",
        "/v1/me",
        "me",
        summary="Who am I",
        tag=ACCOUNTS,
        who=AUTHENTICATED,
        about="The caller's account, user and roles.",
        response=iam_agency.MeResponse,
        rpc=("iam_agency", "me"),
    ),
    Route(
        "POST",
        "/v1/reseller/customers",
        "create_reseller_customer",
        summary="Open a reseller customer's account",
        tag=ACCOUNTS,
        who=RESELLER,
        about="A reseller opens a buyer account whose orders it pays for (reseller only).",
        body=iam_agency.ResellerCustomerRequest,
        response=iam_agency.ResellerCustomerResponse,
        status=201,
        errors=EMAIL_TAKEN,
        rpc=("iam_agency", "create_reseller_customer"),
    ),
    Route(
        "POST",
        "/v1/admin/accounts/{account_id}/credit-limit",
        "set_credit_limit",
        summary="Set a buyer's credit limit",
        tag=ACCOUNTS,
        who=OPERATOR,
        about="Set a buyer's credit limit, which enables paying by `credit` (operator "
        "only). Answers the account's balance with the new limit.",
        body=billing.CreditLimitRequest,
        response=billing.BalanceResponse,
        rpc=("billing", "set_credit_limit"),
    ),
    # -- the account's time zone -------------------------------------------------
    Route(
        "PATCH",
        "/v1/account",
        "change_account",
        summary="Change your account's time zone",
        tag=ACCOUNTS,
        who=(BUYER, SELLER, RESELLER),
        about="`{time_zone}`: the account's IANA time zone (such as `Asia/Shanghai`; UTC "
        "until changed). Subscriptions expire at 23:59:59 local time in it: a change applies "
        "to the next renewal and the next automatic renewal time, and an expiry already set "
        "does not move. Answers the account `{id, name, type, time_zone}`; the same zone "
        "again changes nothing.",
        body=iam_agency.AccountTimeZoneRequest,
        response=iam_agency.AccountSummary,
        errors={
            400: "VALIDATION_ERROR: malformed JSON, a missing or unknown field, or a "
            "`time_zone` that is not an IANA time zone (`fields.time_zone` says so)"
        },
        rpc=("iam_agency", "change_time_zone"),
    ),
    # -- enterprise projects (iam-agency) ---------------------------------------------
    Route(
        "POST",
        "/v1/enterprise-projects",
        "create_enterprise_project",
        summary="Create an enterprise project",
        tag=PROJECTS,
        who=BUYER,
        about="`{name, description, type}` (`type` `commercial`, the default, or `test`): a "
        "new enabled project of the caller's account (buyer only), to account orders to. "
        "Names are 1 to 64 characters, unique in the account whatever their case.",
        body=iam_agency.EnterpriseProjectRequest,
        response=iam_agency.EnterpriseProjectResponse,
        status=201,
        errors={409: "CONFLICT: the account has a project of that name (`fields.name`)"},
        rpc=("iam_agency", "create_enterprise_project"),
    ),
    Route(
        "GET",
        "/v1/enterprise-projects",
        "list_enterprise_projects",
        summary="Your enterprise projects",
        tag=PROJECTS,
        who=BUYER,
        about="The caller's projects, `default` first, then the oldest first, each with its "
        "`type` and `status`; `status` keeps the enabled or the disabled ones.",
        query=iam_agency.EnterpriseProjectsQuery,
        response=iam_agency.EnterpriseProjectPage,
        rpc=("iam_agency", "list_enterprise_projects"),
    ),
    Route(
        "POST",
        "/v1/enterprise-projects/{project_id}/disable",
        "disable_enterprise_project",
        summary="Disable an enterprise project",
        tag=PROJECTS,
        who=BUYER,
        about="No order may name the project from now on (400 at ordering). Disabling a "
        "disabled project answers it unchanged.",
        body=EmptyRequest,
        response=iam_agency.EnterpriseProjectResponse,
        errors={
            404: "NOT_FOUND: not one of the caller's enterprise projects",
            422: "DEFAULT_PROJECT_REQUIRED: `default` cannot be disabled",
        },
        rpc=("iam_agency", "disable_enterprise_project"),
    ),
    Route(
        "POST",
        "/v1/enterprise-projects/{project_id}/enable",
        "enable_enterprise_project",
        summary="Enable an enterprise project",
        tag=PROJECTS,
        who=BUYER,
        about="Orders may name the project again. Enabling an enabled project answers it "
        "unchanged.",
        body=EmptyRequest,
        response=iam_agency.EnterpriseProjectResponse,
        errors={404: "NOT_FOUND: not one of the caller's enterprise projects"},
        rpc=("iam_agency", "enable_enterprise_project"),
    ),
    # -- catalog: sellers ---------------------------------------------------------------
    Route(
        "PUT",
        "/v1/seller/profile",
        "upsert_seller_profile",
        summary="Set the seller's profile",
        tag=CATALOG,
        who=SELLER,
        about="Create or replace the seller's public profile (seller only). Its `currency` "
        "prices the products created after it.",
        body=catalog.SellerProfileRequest,
        response=catalog.SellerProfileResponse,
        rpc=("catalog", "upsert_seller_profile"),
    ),
    Route(
        "GET",
        "/v1/seller/profile",
        "get_seller_profile",
        summary="The seller's profile",
        tag=CATALOG,
        who=SELLER,
        about="The seller's public profile as it was last set (seller only).",
        response=catalog.SellerProfileResponse,
        errors={404: "NOT_FOUND: the seller has no profile yet"},
        rpc=("catalog", "get_seller_profile"),
    ),
    Route(
        "POST",
        "/v1/seller/products",
        "create_product",
        summary="Create a product (draft)",
        tag=CATALOG,
        who=SELLER,
        about="Create a product as a draft (seller only; without a seller profile, 422 "
        "SELLER_PROFILE_REQUIRED). Price amounts are minor units of the seller's currency.",
        body=catalog.CreateProductRequest,
        response=catalog.SellerProductDetailsResponse,
        status=201,
        errors={422: "SELLER_PROFILE_REQUIRED: the seller has no profile yet"},
        rpc=("catalog", "create_product"),
    ),
    Route(
        "POST",
        "/v1/seller/products/{product_id}/publish",
        "publish_product",
        summary="Publish a draft product",
        tag=CATALOG,
        who=SELLER,
        about="Publish a draft: buyers can find and buy it from now on (its seller only).",
        body=EmptyRequest,
        response=catalog.SellerProductDetailsResponse,
        errors={
            409: "CONFLICT: only a draft can be published",
            422: "SAAS_ENDPOINT_REQUIRED: a saas product needs its saas_endpoint_url",
        },
        rpc=("catalog", "publish_product"),
    ),
    Route(
        "GET",
        "/v1/seller/products",
        "list_seller_products",
        summary="The seller's products",
        tag=CATALOG,
        who=SELLER,
        about="The seller's own products, in any status (seller only).",
        query=PageSchema,
        response=catalog.SellerProductPage,
        rpc=("catalog", "list_seller_products"),
    ),
    Route(
        "PUT",
        "/v1/seller/products/{product_id}/request-template",
        "set_request_template",
        summary="Set a product's request template",
        tag=CATALOG,
        who=SELLER,
        about="What a buyer is asked to write in a service request for the product (its "
        "seller only; any status): 0 to 5,000 characters, an empty template removes it. "
        "Answers the product's template (null once removed).",
        body=catalog.RequestTemplateRequest,
        response=catalog.RequestTemplateResponse,
        errors={404: "NOT_FOUND: not one of the seller's products"},
        rpc=("catalog", "set_request_template"),
    ),
    Route(
        "POST",
        "/v1/admin/products/{product_id}/delist",
        "delist_product",
        summary="Delist a product",
        tag=CATALOG,
        who=OPERATOR,
        about="Take a published product off the marketplace, with the reason (operator only).",
        body=catalog.DelistRequest,
        response=catalog.ProductResponse,
        errors={409: "CONFLICT: only a published product can be delisted"},
        rpc=("catalog", "delist_product"),
    ),
    # -- catalog: buyers ----------------------------------------------------------------
    Route(
        "GET",
        "/v1/products",
        "search_products",
        summary="Search products",
        tag=CATALOG,
        who=TOKEN_OPTIONAL,
        about="Search the published products. Anyone may; a bearer token, if sent, must be valid.",
        query=catalog.ProductSearchQuery,
        response=catalog.ProductSummaryPage,
        rpc=("catalog", "search_products"),
    ),
    Route(
        "GET",
        "/v1/products/{product_id}",
        "get_product",
        summary="A product's details",
        tag=CATALOG,
        who=TOKEN_OPTIONAL,
        about="A product's details: specifications with their ids and prices, seller, "
        "terms. Anyone may; a bearer token, if sent, must be valid.",
        response=catalog.ProductResponse,
        handler=handlers.product_details,
    ),
    Route(
        "POST",
        "/v1/saved-products",
        "save_product",
        summary="Save a product to the list",
        tag=CATALOG,
        who=BUYER,
        about='Save a product to "My Saved List" (buyer only); saving it again changes nothing.',
        body=catalog.SaveProductRequest,
        response=catalog.SavedResponse,
        status=201,
        errors={404: "NOT_FOUND: no such published product"},
        rpc=("catalog", "save_product"),
    ),
    Route(
        "GET",
        "/v1/saved-products",
        "list_saved_products",
        summary="My Saved List",
        tag=CATALOG,
        who=BUYER,
        about='"My Saved List", newest first, with what buying each needs (buyer only).',
        query=PageSchema,
        response=catalog.SavedProductPage,
        rpc=("catalog", "list_saved_products"),
    ),
    Route(
        "DELETE",
        "/v1/saved-products/{product_id}",
        "remove_saved_product",
        summary="Remove a product from the list",
        tag=CATALOG,
        who=BUYER,
        about='Remove a product from "My Saved List" (buyer only).',
        status=204,
        rpc=("catalog", "remove_saved_product"),
    ),
    # -- orders and payment -------------------------------------------------------------
    Route(
        "POST",
        "/v1/orders",
        "place_order",
        summary="Place an order",
        tag=ORDERS,
        who=BUYER,
        about="Place an order for one configuration of a product, at the price of now "
        "(buyer only). A reseller's customer's order is paid by the reseller at once.",
        body=orders.PlaceOrderRequest,
        response=orders.OrderResponse,
        status=201,
        errors={
            400: "VALIDATION_ERROR: `enterprise_project_id` names an unknown enterprise "
            'project ("unknown enterprise project") or a disabled one ("enterprise project '
            'is disabled"); nothing placed',
            402: "RESELLER_CREDIT_LIMIT_EXCEEDED: a reseller's customer's order its "
            "reseller's credit limit does not cover; no order placed, nothing charged",
            404: "NOT_FOUND: no such published product or specification",
            409: "AGENCY_NOT_AUTHORIZED or AGENCY_REAUTHORIZATION_REQUIRED: an image needs "
            "both agencies authorised at Mercato's current policy version; nothing placed",
            422: "TERMS_NOT_ACCEPTED: `accept_terms` was not true; QUOTA_EXCEEDED: the cloud "
            "account's quota (named in the message) cannot hold the deployment; "
            "ENTERPRISE_PROJECT_NOT_ALLOWED: a `pay_per_use` order in a project other than "
            "`default` (`enterprise_project_id`)",
        },
        rpc=("orders", "place_order"),
    ),
    Route(
        "POST",
        "/v1/orders/quotes",
        "quote_order",
        summary="Price an order",
        tag=ORDERS,
        who=BUYER,
        about="What `POST /v1/orders` with the same body would cost now, itemised (an "
        "image's servers, disks and EIP bandwidth beside the image); nothing is placed.",
        body=orders.OrderQuoteRequest,
        response=orders.OrderQuoteResponse,
        errors={404: "NOT_FOUND: no such published product or specification"},
        rpc=("orders", "quote_order"),
    ),
    Route(
        "GET",
        "/v1/orders",
        "list_orders",
        summary="My Orders",
        tag=ORDERS,
        who=AUTHENTICATED,
        about='"My Orders", newest first; `status=unpaid` gives "Unpaid Orders".',
        query=orders.OrdersQuery,
        response=orders.OrderPage,
        rpc=("orders", "list_orders"),
    ),
    Route(
        "GET",
        "/v1/orders/{order_id}",
        "get_order",
        summary="An order",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="One of the caller's orders.",
        response=orders.OrderResponse,
        rpc=("orders", "get_order"),
    ),
    Route(
        "POST",
        "/v1/orders/{order_id}/pay",
        "pay_order",
        summary="Pay an order",
        tag=ORDERS,
        who=BUYER,
        about="Pay an unpaid order by balance, card or credit; answers the order, now paid. "
        "It is charged once, however often this is sent.",
        body=orders.PayOrderRequest,
        response=orders.OrderResponse,
        errors={
            402: "PAYMENT_REQUIRED: the balance or the credit left is short, or the card "
            "was declined (PAYMENT_DECLINED); nothing was charged",
            409: "CONFLICT: the order is not unpaid (already paid, cancelled, or its "
            "payment window passed)",
        },
        rpc=("orders", "pay_order"),
    ),
    Route(
        "POST",
        "/v1/orders/{order_id}/cancel",
        "cancel_order",
        summary="Cancel an unpaid order",
        tag=ORDERS,
        who=BUYER,
        about="Cancel an unpaid order; answers the order, now cancelled.",
        body=EmptyRequest,
        response=orders.OrderResponse,
        errors={409: "CONFLICT: only an unpaid order can be cancelled"},
        rpc=("orders", "cancel_order"),
    ),
    # -- agencies and cloud accounts (iam-agency) ---------------------------------------
    Route(
        "PUT",
        "/v1/cloud-account",
        "link_cloud_account",
        summary="Link your cloud account",
        tag=AGENCIES,
        who=BUYER,
        about="The buyer's account at the cloud, where its images are deployed: provider "
        "(`simulated` or `huaweicloud`), region, domain id and project id. Linking another "
        "account cancels the agencies authorised in the previous one.",
        body=iam_agency.CloudAccountRequest,
        response=iam_agency.CloudAccountResponse,
        rpc=("iam_agency", "link_cloud_account"),
    ),
    Route(
        "GET",
        "/v1/cloud-account",
        "get_cloud_account",
        summary="Your cloud account",
        tag=AGENCIES,
        who=BUYER,
        about="The linked cloud account (404 before one is linked).",
        response=iam_agency.CloudAccountResponse,
        rpc=("iam_agency", "get_cloud_account"),
    ),
    Route(
        "GET",
        "/v1/agencies",
        "list_agencies",
        summary="Your agencies",
        tag=AGENCIES,
        who=BUYER,
        about="`mkp_agency_trust` and `mkp_rfs_agency_trust` with their delegate, the policy "
        "(name, version, document) Mercato needs, their status (`not_authorized`, "
        "`authorized`, `needs_reauthorization`, `broken`) and problems; and the deprecated "
        "agencies found in the account, with the advice to delete them.",
        response=iam_agency.AgenciesResponse,
        rpc=("iam_agency", "list_agencies"),
    ),
    Route(
        "POST",
        "/v1/agencies/authorization",
        "authorize_agencies",
        summary="Authorise the agencies",
        tag=AGENCIES,
        who=BUYER,
        about="`{access_key, secret_key}` of a user of the linked cloud account allowed to "
        "manage IAM: Mercato creates or updates both agencies and their custom policies, "
        "grants them on the project, and forgets the keys (never stored, never logged).",
        body=iam_agency.AgencyAuthorizationRequest,
        response=iam_agency.AgenciesResponse,
        errors={
            400: "VALIDATION_ERROR: the cloud refused the keys (named `access_key`)",
            409: "CONFLICT: no cloud account is linked yet",
        },
        rpc=("iam_agency", "authorize_agencies"),
    ),
    Route(
        "POST",
        "/v1/agencies/check",
        "check_agencies",
        summary="Check the agencies now",
        tag=AGENCIES,
        who=BUYER,
        about="Checks both agencies in the cloud now (also done on a schedule and before "
        "every deployment): deleted, changed or reused ones become `broken`.",
        body=EmptyRequest,
        response=iam_agency.AgenciesResponse,
        rpc=("iam_agency", "check_agencies"),
    ),
    Route(
        "DELETE",
        "/v1/agencies/{name}",
        "delete_agency",
        summary="Cancel an agency",
        tag=AGENCIES,
        who=BUYER,
        about="Cancels the authorisation: from this moment no deployment may use the "
        "agency, and Mercato deletes it in the cloud.",
        response=iam_agency.AgenciesResponse,
        rpc=("iam_agency", "delete_agency"),
    ),
    Route(
        "POST",
        "/v1/agencies/simulations",
        "simulate_agency_action",
        summary="Simulate an action under an agency",
        tag=AGENCIES,
        who=BUYER,
        about="`{agency, action}` -> `{decision, statement}`: the IAM policy 1.1 evaluation "
        "Mercato applies before each cloud call (explicit Deny wins; `*` and `?` in actions).",
        body=iam_agency.AgencySimulationRequest,
        response=iam_agency.AgencySimulationResponse,
        rpc=("iam_agency", "simulate_agency_action"),
    ),
    Route(
        "GET",
        "/v1/cloud/flavors",
        "list_cloud_flavors",
        summary="Server flavors of your cloud",
        tag=AGENCIES,
        who=BUYER,
        about="The server flavors the buyer's cloud account offers (`{id, name, vcpus, ram_mb}`), read under `mkp_agency_trust`; 409 when the agencies are not authorised.",
        response=provisioning.CloudResourcesResponse,
        handler=handlers.cloud_resources("flavors"),
    ),
    Route(
        "GET",
        "/v1/cloud/vpcs",
        "list_cloud_vpcs",
        summary="VPCs of your cloud",
        tag=AGENCIES,
        who=BUYER,
        about="The VPCs of the buyer's cloud account (`{id, name, cidr, status}`), for quick provisioning.",
        response=provisioning.CloudResourcesResponse,
        handler=handlers.cloud_resources("vpcs"),
    ),
    Route(
        "GET",
        "/v1/cloud/subnets",
        "list_cloud_subnets",
        summary="Subnets of a VPC",
        tag=AGENCIES,
        who=BUYER,
        about="The subnets of one VPC of the buyer's cloud account (`{id, name, cidr, vpc_id, status}`).",
        query=provisioning.SubnetsQuery,
        response=provisioning.CloudResourcesResponse,
        handler=handlers.cloud_resources("subnets"),
    ),
    Route(
        "GET",
        "/v1/cloud/security-groups",
        "list_cloud_security_groups",
        summary="Security groups of your cloud",
        tag=AGENCIES,
        who=BUYER,
        about="The security groups of the buyer's cloud account (`{id, name, description}`); an order may name one, or `recommended`.",
        response=provisioning.CloudResourcesResponse,
        handler=handlers.cloud_resources("security_groups"),
    ),
    # -- the seller's orders -------------------------------------------------------------
    Route(
        "GET",
        "/v1/seller/orders",
        "list_seller_orders",
        summary="The orders of the seller's products",
        tag=ORDERS,
        who=SELLER,
        about="The orders of the seller's products, newest first (seller only); `status` "
        "filters. Each shows the seller's lines, their amount and the buyer's account and "
        "name, with its email when the buyer shared its contact with the order.",
        query=orders.SellerOrdersQuery,
        response=orders.SellerOrderPage,
        handler=handlers.seller_orders,
    ),
    Route(
        "GET",
        "/v1/seller/orders/{order_id}",
        "get_seller_order",
        summary="An order of the seller's products",
        tag=ORDERS,
        who=SELLER,
        about="One order of the seller's products, as the list shows it (seller only).",
        response=orders.SellerOrderResponse,
        errors={404: "NOT_FOUND: no order of the seller's products"},
        handler=handlers.seller_order,
    ),
    # -- billing ------------------------------------------------------------------------
    Route(
        "GET",
        "/v1/billing/balance",
        "get_balance",
        summary="Balance and credit",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="The account's prepaid balance, credit limit and credit used.",
        response=billing.BalanceResponse,
        rpc=("billing", "get_balance"),
    ),
    Route(
        "POST",
        "/v1/billing/top-ups",
        "top_up",
        summary="Top up the balance from a card",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="Add money to the balance from a card. With an Idempotency-Key the card is "
        "charged once for it, even past the gateway's own memory of the key.",
        body=billing.TopUpRequest,
        response=billing.TopUpResponse,
        status=201,
        handler=handlers.top_up,
    ),
    Route(
        "POST",
        "/v1/billing/cards",
        "bind_card",
        summary="Keep a card on the account",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="Keep a card on the account (a bound card): `{token}` from the card provider "
        "(`POST /v1/tokens` there; card numbers never reach Mercato). The provider keeps "
        "the card, Mercato its brand, last four digits and expiry; `card: {card_id}` then "
        "pays with it. With an Idempotency-Key, a retry answers the first card.",
        body=billing.BindCardRequest,
        response=billing.CardResponse,
        status=201,
        rpc=("billing", "bind_card"),
    ),
    Route(
        "GET",
        "/v1/billing/cards",
        "list_cards",
        summary="Cards kept on the account",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="The cards the account keeps, newest first.",
        query=PageSchema,
        response=billing.CardPage,
        rpc=("billing", "list_cards"),
    ),
    Route(
        "DELETE",
        "/v1/billing/cards/{card_id}",
        "delete_card",
        summary="Forget a kept card",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="Forget a card the account keeps, at the card provider too (404 for any "
        "other account's card).",
        status=204,
        errors={404: "NOT_FOUND: no such card on this account"},
        rpc=("billing", "delete_card"),
    ),
    Route(
        "GET",
        "/v1/billing/transactions",
        "list_transactions",
        summary="Balance movements",
        tag=ORDERS,
        who=AUTHENTICATED,
        about="The account's ledger movements (payments and top-ups), newest first.",
        query=PageSchema,
        response=billing.TransactionPage,
        rpc=("billing", "list_transactions"),
    ),
    # -- bills and cost analysis ---------------------------------------------------------
    Route(
        "GET",
        "/v1/billing/bills",
        "list_bills",
        summary="A month's bill",
        tag=ORDERS,
        who=(BUYER, RESELLER),
        about="The caller's charges and refunds of one UTC month (`month=YYYY-MM`), oldest "
        "first, each with its order, product, enterprise project and amount (a charge "
        "positive, a refund negative), and the month's totals per project (`charges`, "
        "`refunds`, `net`) and `total_net`. `enterprise_project_id` keeps one project's "
        "lines. A refund stays in its payment's project; a reseller's bill holds the orders "
        "it paid for its customers. Top-ups are no bill lines. 400 names `month`.",
        query=billing.BillsQuery,
        response=billing.BillPage,
        rpc=("billing", "list_bills"),
    ),
    Route(
        "GET",
        "/v1/billing/cost-analysis",
        "cost_analysis",
        summary="Cost analysis",
        tag=ORDERS,
        who=(BUYER, RESELLER),
        about="The caller's net spending (charges less refunds) from `from` to `to` (UTC "
        "days `YYYY-MM-DD`, both included, at most 366 days), grouped by `group_by`: "
        "`enterprise_project` (the default), `product` or `month` (UTC months): a series of "
        "`{key, name, amount}` and their `total`. 400 names `from`, `to` (before `from`, or "
        "more than 366 days) or `group_by`.",
        query=billing.CostAnalysisQuery,
        response=billing.CostAnalysisResponse,
        rpc=("billing", "cost_analysis"),
    ),
    # -- invoices -------------------------------------------------------------------------
    Route(
        "POST",
        "/v1/invoices",
        "request_invoice",
        summary="Ask for an invoice",
        tag=ORDERS,
        who=BUYER,
        about="An invoice for 1 to 50 of the caller's paid orders, all of one seller, made "
        "out to `title` (with `tax_id`, `address`, `email`). Answers it `requested`; it is "
        "issued within seconds: numbered `INV-<year>-<6 digits>` (no gaps in a year), the "
        "seller's details added, its PDF made. Each order must have been paid by the "
        "caller itself, not be refunded and be on no live invoice.",
        body=billing.InvoiceRequest,
        response=billing.InvoiceResponse,
        status=201,
        errors={
            404: "NOT_FOUND: an order that is not the caller's",
            409: "CONFLICT: `fields.order_ids` names each order that cannot be invoiced and "
            "why: `not_paid`, `refunded`, `already_invoiced`, `paid_by_reseller`",
            422: "INVOICE_SELLERS_DIFFER: the orders are of more than one seller",
        },
        rpc=("billing", "request_invoice"),
    ),
    Route(
        "GET",
        "/v1/invoices",
        "list_invoices",
        summary="The caller's invoices",
        tag=ORDERS,
        who=BUYER,
        about="Newest first; `status` (`requested`, `issued`, `returned`, `reissued`, "
        "`cancelled`) keeps those in one status.",
        query=billing.InvoiceQuery,
        response=billing.InvoicePage,
        rpc=("billing", "list_invoices"),
    ),
    Route(
        "GET",
        "/v1/invoices/{invoice_id}",
        "get_invoice",
        summary="An invoice",
        tag=ORDERS,
        who=BUYER,
        about="One of the caller's invoices, its orders and, once issued, its number and "
        "the seller's details as they were then.",
        response=billing.InvoiceResponse,
        errors={404: "NOT_FOUND: not one of the caller's invoices"},
        rpc=("billing", "get_invoice"),
    ),
    Route(
        "GET",
        "/v1/invoices/{invoice_id}/pdf",
        "get_invoice_pdf",
        summary="An invoice as a PDF",
        tag=ORDERS,
        who=BUYER,
        about="The issued invoice's PDF, as it was made when it was issued, with "
        "`Content-Disposition: attachment` naming it `<number>.pdf`. A returned invoice "
        "keeps its PDF.",
        media_type="application/pdf",
        raw_response={"type": "string", "format": "binary", "description": "The PDF."},
        errors={
            404: "NOT_FOUND: not one of the caller's invoices",
            409: "CONFLICT: the invoice is not issued yet",
        },
        handler=handlers.invoice_pdf,
    ),
    Route(
        "POST",
        "/v1/invoices/{invoice_id}/return",
        "return_invoice",
        summary="Return an invoice",
        tag=ORDERS,
        who=BUYER,
        about="Give an issued invoice back with a `reason`: it becomes `returned` and its "
        "orders may be invoiced again (a reissue, or a new request).",
        body=billing.InvoiceReturnRequest,
        response=billing.InvoiceResponse,
        errors={
            404: "NOT_FOUND: not one of the caller's invoices",
            409: "CONFLICT: the invoice is not issued",
        },
        rpc=("billing", "return_invoice"),
    ),
    Route(
        "POST",
        "/v1/invoices/{invoice_id}/reissue",
        "reissue_invoice",
        summary="Reissue a returned invoice",
        tag=ORDERS,
        who=BUYER,
        about="A new invoice for a returned invoice's orders, with any of `title`, "
        "`tax_id`, `address`, `email` changed; the returned one becomes `reissued` "
        "(`reissued_as`), the new one (`reissue_of`) is issued as a request is.",
        body=billing.InvoiceReissueRequest,
        response=billing.InvoiceResponse,
        status=201,
        errors={
            404: "NOT_FOUND: not one of the caller's invoices",
            409: "CONFLICT: the invoice is not returned, or `fields.order_ids` names an "
            "order invoiced again (or refunded) since",
        },
        rpc=("billing", "reissue_invoice"),
    ),
    # -- purchased apps -----------------------------------------------------------------
    Route(
        "GET",
        "/v1/purchased-apps",
        "list_purchased_apps",
        summary="Purchased Apps",
        tag=PURCHASED_APPS,
        who=AUTHENTICATED,
        about='"Purchased Apps": one row per subscription, newest first.',
        query=PageSchema,
        response=orders.PurchasedAppPage,
        rpc=("orders", "list_purchased_apps"),
    ),
    Route(
        "GET",
        "/v1/purchased-apps/{subscription_id}",
        "get_purchased_app",
        summary="A purchased app",
        tag=PURCHASED_APPS,
        who=AUTHENTICATED,
        about="One of the caller's purchased apps: application information (the password "
        "masked), basic information and the seller's contact.",
        response=schemas.PurchasedAppDetailsResponse,
        headers=NO_STORE,  # it carries the license key
        handler=handlers.purchased_app,
    ),
    Route(
        "POST",
        "/v1/purchased-apps/{subscription_id}/credentials/reveal",
        "reveal_credentials",
        summary="Reveal a purchased app's password",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="The eye icon: the delivered username and password in the clear. Every "
        "reveal is recorded (who, when, which request) and limited to a few a minute.\n\n"
        "The one POST that an `Idempotency-Key` does not replay: a replayed answer would "
        "show the password without a recorded reveal, and would keep a copy of it in the "
        "gateway's store. Revealing again changes nothing but the record.",
        body=EmptyRequest,
        response=provisioning.CredentialsResponse,
        idempotent=False,
        headers=NO_STORE,
        errors={
            404: "NOT_FOUND: not the caller's, or nothing delivered with a password",
            429: "RATE_LIMITED: too many reveals this minute",
        },
        rpc=("provisioning", "reveal_credentials"),
    ),
    # -- renewals and the subscription's timeline --------------------------
    Route(
        "GET",
        "/v1/renewals",
        "list_renewals",
        summary="Renewals: what to renew",
        tag=PURCHASED_APPS,
        who=AUTHENTICATED,
        about="The caller's yearly/monthly purchased apps to renew, soonest expiry first: "
        "enabled ones expiring within `days` (default 30), and every expired (grace period: "
        "still usable) or frozen (retention period: data kept) one, each with `days_left`, "
        "`auto_renew`, and when it is frozen (`grace_ends_at`) and released (`release_at`) "
        "unless renewed.",
        query=orders.RenewalsQuery,
        response=orders.RenewalPage,
        rpc=("orders", "list_renewals"),
    ),
    Route(
        "POST",
        "/v1/purchased-apps/{subscription_id}/renewal-quotes",
        "quote_renewal",
        summary="Price a renewal",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="The catalog's current price of the purchased app's current configuration for "
        "`period`, binding until `valid_until` (at least 15 minutes), and the expiry it "
        "would give: the period counted from the current expiry (also when expired or "
        "frozen: the grace and retention days are not given back), ending 23:59:59 in the "
        "account's time zone.",
        body=orders.RenewalQuoteRequest,
        response=orders.RenewalQuoteResponse,
        status=201,
        errors={
            404: "NOT_FOUND: not one of the caller's purchased apps",
            409: "SUBSCRIPTION_RELEASED: the purchased app was released",
            422: "RENEWAL_NOT_SUPPORTED: not yearly/monthly, or not enabled, expired or frozen "
            "(still being delivered)",
        },
        rpc=("orders", "quote_renewal"),
    ),
    Route(
        "POST",
        "/v1/purchased-apps/{subscription_id}/renewals",
        "place_renewal",
        summary="Renew a purchased app",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="An order (`type: renewal`) from a renewal quote: the current configuration "
        "for the quoted period at the quoted amount, to pay as any order "
        "(`POST /v1/orders/{id}/pay`; a reseller's customer's is paid by the reseller at "
        "once). Once paid the purchased app runs to the new expiry and is enabled again (a "
        "frozen one is unfrozen), and the order is completed. One order per quote.",
        body=orders.RenewalRequest,
        response=orders.OrderResponse,
        status=201,
        errors={
            402: "PAYMENT_REQUIRED: a reseller's payment was refused; nothing was placed",
            404: "NOT_FOUND: not one of the caller's purchased apps or renewal quotes",
            409: "QUOTE_USED: the quote already made an order (named in the message); "
            "SUBSCRIPTION_RELEASED: the purchased app was released",
            422: "QUOTE_EXPIRED: past the quote's `valid_until`; RENEWAL_NOT_SUPPORTED",
        },
        rpc=("orders", "place_renewal"),
    ),
    # -- auto-renewal and upgrades ---------------------------------------------
    Route(
        "PUT",
        "/v1/purchased-apps/{subscription_id}/auto-renew",
        "set_auto_renew",
        summary="Turn auto-renew on or off",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="Automatic renewal of a license or a professional service billed "
        "yearly/monthly, for `period` (required when `enabled`); switched off or its period "
        "changed at any time. It is renewed at 03:00 account time 7 days before its expiry "
        "(`next_auto_renew_at`), at the catalog's price then, from the balance, then the "
        "credit (a reseller's customer's: by its reseller); an attempt that cannot be paid "
        "is retried daily at 03:00 until the expiry, and the buyer is messaged each time. "
        "No new supervision flow.",
        body=orders.AutoRenewRequest,
        response=orders.AutoRenewResponse,
        errors={
            404: "NOT_FOUND: not one of the caller's purchased apps",
            409: "SUBSCRIPTION_RELEASED: the purchased app was released",
            422: "AUTO_RENEW_NOT_SUPPORTED: not a license or professional service billed "
            "yearly/monthly",
        },
        rpc=("orders", "set_auto_renew"),
    ),
    Route(
        "POST",
        "/v1/purchased-apps/{subscription_id}/upgrade-quotes",
        "quote_upgrade",
        summary="Price an upgrade",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="A binding price, until `valid_until`, for moving a SaaS purchased app billed "
        "yearly/monthly to a higher configuration for the time it has left: the new "
        "configuration's price for the period times the part of the period left, minus "
        "the unused value of the current one (the same part of its price), never below 0, "
        "itemised in `lines` (the unused value negative). The expiry does not move.",
        body=orders.UpgradeQuoteRequest,
        response=orders.UpgradeQuoteResponse,
        status=201,
        errors={
            404: "NOT_FOUND: not one of the caller's purchased apps, or no such specification",
            422: "UPGRADE_NOT_SUPPORTED: not an enabled SaaS app billed yearly/monthly, or an "
            "upgrade is under way; DOWNGRADE_NOT_SUPPORTED: not a higher configuration (at "
            "least the quantity, another specification or more of it, priced above the "
            "current one)",
        },
        rpc=("orders", "quote_upgrade"),
    ),
    Route(
        "POST",
        "/v1/purchased-apps/{subscription_id}/upgrades",
        "place_upgrade",
        summary="Upgrade a purchased app",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="An order (`type: upgrade`) at the quoted amount, to pay as any order (a "
        "zero amount too; a reseller's customer's is paid by the reseller at once). Once "
        "paid it is `delivering` while the seller's system applies the upgrade "
        "(`upgrading: true` on the purchased app); then the app shows the new "
        "specification and quantity and the order is completed, or, if the seller refuses, "
        "the order is cancelled and refunded in full. One order per quote.",
        body=orders.PlaceUpgradeRequest,
        response=orders.OrderResponse,
        status=201,
        errors={
            402: "PAYMENT_REQUIRED: a reseller's payment was refused; nothing was placed",
            404: "NOT_FOUND: not one of the caller's purchased apps or upgrade quotes",
            409: "QUOTE_USED: the quote already made an order (named in the message)",
            422: "TERMS_NOT_ACCEPTED; QUOTE_EXPIRED: past the quote's `valid_until`; "
            "UPGRADE_NOT_SUPPORTED",
        },
        rpc=("orders", "place_upgrade"),
    ),
    # -- moving purchased apps between enterprise projects ------------------------------
    Route(
        "POST",
        "/v1/enterprise-projects/{project_id}/resources",
        "move_to_enterprise_project",
        summary="Move purchased apps to an enterprise project",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="Move 1 to 100 of the caller's purchased apps to one of its enterprise "
        "projects, all of them or none (buyer only). `mode`: `with_associated` moves an "
        "image's servers with their disks and EIPs, `independent` the servers only. Their "
        "later renewal, upgrade and auto-renewal orders are booked to the new project. One "
        "already there is left as it is (`moved: false`). Resources move only between "
        "projects of one type (commercial or test).",
        body=orders.MoveResourcesRequest,
        response=orders.MoveResourcesResponse,
        errors={
            400: "VALIDATION_ERROR: the target project is disabled (`enterprise_project_id`)",
            404: "NOT_FOUND: not one of the caller's enterprise projects or purchased apps",
            409: "CONFLICT: renewal or upgrade orders of the apps kept being placed while "
            "the move waited for them; nothing moved, try again",
            422: "MOVE_NOT_ALLOWED: `subscription_ids` names each refused one and the rule "
            "(`one_time`, `pay_per_use`, `released`, `project_type`); nothing moved",
        },
        rpc=("orders", "move_to_enterprise_project"),
    ),
    # -- unsubscriptions (guide section 7) ----------------------------------
    Route(
        "GET",
        "/v1/unsubscriptions/eligible",
        "list_eligible_unsubscriptions",
        summary="My Unsubscriptions: what may be unsubscribed from",
        tag=PURCHASED_APPS,
        who=BUYER,
        about='"My Unsubscriptions" (buyer only): the purchased apps that may be unsubscribed '
        "from now, newest first, each with its first order, product, specification, seller, "
        "delivery method and `max_refundable`. A license, a professional service or a "
        "supervised SaaS product while its order is not completed (the transaction guarantee "
        "period), refunding at most what the first order paid (renewals excluded); an image "
        "by the year or month, refunding the unused part of its period at once (`automatic`).",
        query=PageSchema,
        response=orders.EligibleUnsubscriptionPage,
        rpc=("orders", "list_eligible_unsubscriptions"),
    ),
    Route(
        "POST",
        "/v1/unsubscriptions",
        "request_unsubscription",
        summary="Request an unsubscription",
        tag=PURCHASED_APPS,
        who=BUYER,
        about="Unsubscribe from a purchased app with the refund negotiated with the seller "
        "(0 < refund <= what the first order paid; renewals excluded) and a reason: the "
        "request waits for the seller's review (`pending_review`). Once approved, the refund "
        "reaches the payer within 3 hours, the subscription is released and the supervision "
        "flow closed. An image follows the cloud's rule: the unused part of its period is "
        "refunded at once, with no review (the answer is `approved`).",
        body=orders.UnsubscriptionRequest,
        response=orders.UnsubscriptionResponse,
        status=201,
        errors={
            400: "VALIDATION_ERROR: the refund missing, not above 0 or not in the order's "
            "currency; an unknown reason; `reason_detail` over 500 characters, or missing "
            "with the reason `other`",
            404: "NOT_FOUND: not one of the caller's purchased apps",
            422: "UNSUBSCRIPTION_NOT_ALLOWED: `fields.subscription_id` and the message name "
            "the rule (`pay_per_use`, `unsupervised_saas`, `transaction_completed`, "
            "`one_time_image`, `already_requested`, `released`, `period_ended`); "
            "REFUND_ABOVE_PAID: more than the first order paid",
        },
        rpc=("orders", "request_unsubscription"),
    ),
    Route(
        "GET",
        "/v1/unsubscriptions",
        "list_unsubscriptions",
        summary="My unsubscription requests",
        tag=PURCHASED_APPS,
        who=AUTHENTICATED,
        about="The caller's unsubscription requests, newest first; `status` filters "
        "(`pending_review`, `approved`, `rejected`, `refunded`).",
        query=orders.UnsubscriptionsQuery,
        response=orders.UnsubscriptionPage,
        rpc=("orders", "list_unsubscriptions"),
    ),
    Route(
        "GET",
        "/v1/unsubscriptions/{unsubscription_id}",
        "get_unsubscription",
        summary="An unsubscription request",
        tag=PURCHASED_APPS,
        who=AUTHENTICATED,
        about="One of the caller's unsubscription requests.",
        response=orders.UnsubscriptionResponse,
        errors={404: "NOT_FOUND: not one of the caller's requests"},
        rpc=("orders", "get_unsubscription"),
    ),
    Route(
        "GET",
        "/v1/seller/unsubscriptions",
        "list_seller_unsubscriptions",
        summary="Unsubscription requests to review",
        tag=ORDERS,
        who=SELLER,
        about="Seller Console > Orders > Unsubscriptions (seller only): the requests of the "
        "seller's products, newest first; `status=pending_review` gives those to review. Each "
        "names the buyer, with its email only when the buyer shared its contact with the "
        "request.",
        query=orders.UnsubscriptionsQuery,
        response=orders.SellerUnsubscriptionPage,
        handler=handlers.seller_unsubscriptions,
    ),
    Route(
        "POST",
        "/v1/seller/unsubscriptions/{unsubscription_id}/approval",
        "approve_unsubscription",
        summary="Approve an unsubscription",
        tag=ORDERS,
        who=SELLER,
        about="`{}`: the seller of the product approves. At once the first order is cancelled "
        "with the negotiated refund (the payer is refunded within 3 hours), the subscription "
        "released and the supervision flow closed; the request becomes `refunded` when the "
        "refund is made.",
        body=EmptyRequest,
        response=orders.UnsubscriptionResponse,
        errors={
            404: "NOT_FOUND: not a request of the seller's products",
            409: "CONFLICT: the request is not `pending_review` (approved or rejected already)",
            422: "UNSUBSCRIPTION_NOT_ALLOWED: the order completed meanwhile "
            "(`transaction_completed`: the buyer accepted) or the subscription was released",
        },
        rpc=("orders", "approve_unsubscription"),
    ),
    Route(
        "POST",
        "/v1/seller/unsubscriptions/{unsubscription_id}/rejection",
        "reject_unsubscription",
        summary="Reject an unsubscription",
        tag=ORDERS,
        who=SELLER,
        about="`{reason}`: the seller of the product rejects; nothing is refunded and the "
        "buyer may request again.",
        body=orders.UnsubscriptionRejectionRequest,
        response=orders.UnsubscriptionResponse,
        errors={
            404: "NOT_FOUND: not a request of the seller's products",
            409: "CONFLICT: the request is not `pending_review` (approved or rejected already)",
        },
        rpc=("orders", "reject_unsubscription"),
    ),
    # -- sellers' keys ------------------------------------------------------------------
    Route(
        "POST",
        "/v1/seller/interface-credentials",
        "issue_interface_credentials",
        summary="Issue the seller's SaaS interface credentials",
        tag=CATALOG,
        who=SELLER,
        about="A new access key and secret for the seller's SaaS endpoints (seller only); "
        "the secret is in this answer only, and a new pair replaces the old one. With an "
        "`Idempotency-Key` a retried request gets the same pair again (kept encrypted by "
        "the idempotency store) instead of replacing it once more.",
        body=EmptyRequest,
        response=provisioning.InterfaceCredentialsResponse,
        status=201,
        headers=NO_STORE,
        rpc=("provisioning", "issue_interface_credentials"),
    ),
    Route(
        "GET",
        "/v1/sellers/{seller_id}/license-public-key",
        "license_public_key",
        summary="A seller's license verification key",
        tag=CATALOG,
        who=TOKEN_OPTIONAL,
        about="The Ed25519 public key that verifies this seller's license keys offline "
        "(anyone may read it; the seller's own first request creates it).",
        response=provisioning.LicensePublicKeyResponse,
        errors={404: "NOT_FOUND: the seller has no license signing key yet"},
        rpc=("provisioning", "license_public_key"),
    ),
    # -- service supervision -----------------------------------------------------------
    Route(
        "GET",
        "/v1/supervision/flows",
        "list_supervision_flows",
        summary="Service supervision: my flows",
        tag=SUPERVISION,
        who=(BUYER, SELLER),
        about="The caller's flows, newest first: a buyer's orders, a seller's products' "
        "orders. Filter by `step`, or `q` (an order id, or words of the product's name).",
        query=supervision.FlowsQuery,
        response=supervision.FlowPage,
        rpc=("supervision", "list_flows"),
    ),
    Route(
        "GET",
        "/v1/supervision/flows/{flow_id}",
        "get_supervision_flow",
        summary="A supervision flow",
        tag=SUPERVISION,
        who=AUTHENTICATED,
        about="The flow's steps, the buyer's requests, the seller's provisions, the "
        "request template, a SaaS product's application until acceptance, the appeal and "
        "the operation record. Its buyer, its seller and operators see it.",
        response=supervision.FlowResponse,
        handler=handlers.supervision_flow,
    ),
    Route(
        "POST",
        "/v1/supervision/flows/{flow_id}/requests",
        "submit_supervision_request",
        summary="Submit the service request (buyer)",
        tag=SUPERVISION,
        who=BUYER,
        about="Describe what you need, with attachments; the seller is to confirm it "
        "(409 unless the flow is awaiting_request).",
        body=supervision.RequestSubmission,
        response=supervision.FlowResponse,
        status=201,
        rpc=("supervision", "submit_request"),
    ),
    Route(
        "POST",
        "/v1/supervision/flows/{flow_id}/confirmation",
        "confirm_supervision_request",
        summary="Confirm or send back the request (seller)",
        tag=SUPERVISION,
        who=SELLER,
        about="`{}` confirms and starts the service (a supervised SaaS tenant is created "
        'now); `{"reject": true, "reason": "..."}` sends the request back to the buyer.',
        body=supervision.Confirmation,
        response=supervision.FlowResponse,
        rpc=("supervision", "answer_request"),
    ),
    Route(
        "POST",
        "/v1/supervision/flows/{flow_id}/provisions",
        "provide_supervised_service",
        summary="Service provided (seller)",
        tag=SUPERVISION,
        who=SELLER,
        about="The seller says what it provided, with attachments; the buyer is to accept "
        "it. Not for SaaS, whose delivery moves the flow.",
        body=supervision.ProvisionSubmission,
        response=supervision.FlowResponse,
        status=201,
        rpc=("supervision", "provide_service"),
    ),
    Route(
        "POST",
        "/v1/supervision/flows/{flow_id}/acceptance",
        "accept_supervised_delivery",
        summary="Accept the delivery (buyer)",
        tag=SUPERVISION,
        who=BUYER,
        about="Completes the flow and the order and enables the purchased app.",
        body=EmptyRequest,
        response=supervision.FlowResponse,
        rpc=("supervision", "accept"),
    ),
    Route(
        "POST",
        "/v1/supervision/flows/{flow_id}/appeals",
        "open_supervision_appeal",
        summary="Appeal (buyer or seller)",
        tag=SUPERVISION,
        who=(BUYER, SELLER),
        about="At any step before completion; the flow is frozen until an operator "
        "decides, within three working days.",
        body=supervision.AppealRequest,
        response=supervision.AppealView,
        status=201,
        errors={409: "CONFLICT: an appeal is open already, or the flow is completed or closed"},
        rpc=("supervision", "open_appeal"),
    ),
    Route(
        "GET",
        "/v1/admin/appeals",
        "list_open_appeals",
        summary="Open appeals (operator)",
        tag=SUPERVISION,
        who=OPERATOR,
        about="Open appeals with their due time, the earliest due (the overdue) first.",
        query=PageSchema,
        response=supervision.AppealPage,
        rpc=("supervision", "list_open_appeals"),
    ),
    Route(
        "POST",
        "/v1/admin/appeals/{appeal_id}/resolution",
        "resolve_appeal",
        summary="Decide an appeal (operator)",
        tag=SUPERVISION,
        who=OPERATOR,
        about="`continue` (the flow resumes where it was), `complete` (as if accepted) or "
        "`refund` (`refund` 0 < x <= paid goes back to the payer, the order is cancelled, "
        "the flow closed).",
        body=supervision.AppealResolution,
        response=supervision.AppealView,
        errors={
            409: "CONFLICT: the appeal is resolved already",
            422: "REFUND_ABOVE_PAID: the refund is more than the order's payment",
        },
        rpc=("supervision", "resolve_appeal"),
    ),
    # -- messages -------------------------------------------------------------------------
    Route(
        "GET",
        "/v1/messages",
        "list_messages",
        summary="My messages",
        tag=MESSAGES,
        who=AUTHENTICATED,
        about="Direct messages, newest first, with how many are unread.",
        query=supervision.MessagesQuery,
        response=supervision.MessagePage,
        rpc=("supervision", "list_messages"),
    ),
    Route(
        "POST",
        "/v1/messages/{message_id}/read",
        "read_message",
        summary="Mark a message read",
        tag=MESSAGES,
        who=AUTHENTICATED,
        about="Only its addressee may (404 for anyone else).",
        body=EmptyRequest,
        response=supervision.MessageView,
        rpc=("supervision", "read_message"),
    ),
    # -- attachments ----------------------------------------------------------------------
    Route(
        "POST",
        "/v1/attachments",
        "upload_attachment",
        summary="Upload an attachment",
        tag=ATTACHMENTS,
        who=(BUYER, SELLER, OPERATOR),
        about="Upload one file as `multipart/form-data`, in one part named `file`: at most "
        "50 MB (52,428,800 bytes), a BMP, JPEG, PNG, GIF, PDF, DOCX, XLSX, PPTX or ZIP, "
        "recognised by its content (not its name or declared type). Answers its id, to be "
        "named in a service request, provision or appeal, which attaches it to that flow. "
        "Only its uploader may download it until then.\n\n"
        "The one route that takes a body larger than `GATEWAY_MAX_BODY_BYTES`; it is read "
        "as it arrives, never held whole. An `Idempotency-Key` is not honoured: a retry "
        "uploads the file again, under a new id.",
        raw_body=attachments.UPLOAD_BODY,
        body_media_type="multipart/form-data",
        max_body_bytes=attachments.MAX_UPLOAD_BODY_BYTES,
        response=supervision.AttachmentResponse,
        status=201,
        idempotent=False,
        errors={
            400: "VALIDATION_ERROR: not multipart/form-data, no `file` part, another part "
            "beside it, or a body that does not parse",
            413: "PAYLOAD_TOO_LARGE: the file is larger than 50 MB (52,428,800 bytes)",
            415: "UNSUPPORTED_MEDIA_TYPE: the content is none of the accepted types",
        },
        handler=attachments.upload,
    ),
    Route(
        "GET",
        "/v1/attachments/{attachment_id}",
        "download_attachment",
        summary="Download an attachment",
        tag=ATTACHMENTS,
        who=AUTHENTICATED,
        about="The file's bytes, with its recognised `Content-Type`, `Content-Disposition: "
        "attachment` and its name, and `X-Content-Type-Options: nosniff`. For its "
        "uploader; the buyer and seller of the flow it is attached to; an operator when "
        "that flow has an appeal. 404 for anyone else.",
        media_type="application/octet-stream",
        raw_response=attachments.DOWNLOAD_BODY,
        errors={404: "NOT_FOUND: no such attachment, or not one the caller may download"},
        handler=attachments.download,
    ),
    # -- the test clock ---------------------------------------------------------------
    Route(
        "GET",
        "/v1/admin/clock",
        "get_clock",
        summary="The test clock",
        tag=TEST_CLOCK,
        who=OPERATOR,
        about="The time every service has reached and its offset from the wall clock "
        "(operator only). 404 when the system does not run with MERCATO_CLOCK=controllable.",
        response=ClockResponse,
        errors={
            404: "NOT_FOUND: the system runs on the system clock",
            503: "SERVICE_UNAVAILABLE: a service did not answer",
        },
        handler=handlers.clock,
    ),
    Route(
        "POST",
        "/v1/admin/clock",
        "advance_clock",
        summary="Move the test clock forward",
        tag=TEST_CLOCK,
        who=OPERATOR,
        about="Move every service's time forward by `advance_seconds` (operator only); "
        "time never goes back. Answers once every service has moved; the timers due at "
        "the new time (an unpaid order's cancellation, a delivery's deadline, …) run "
        "within 10 s. A 503 leaves some services moved and some not: sending the same move "
        "again brings them all to the time the first one meant. 404 when the system does not run with "
        "MERCATO_CLOCK=controllable (never in production).",
        body=ClockAdvanceRequest,
        response=ClockResponse,
        errors={
            404: "NOT_FOUND: the system runs on the system clock",
            503: "SERVICE_UNAVAILABLE: a service did not answer; send the move again",
        },
        handler=handlers.advance_clock,
    ),
    # -- operations -----------------------------------------------------------------------
    Route(
        "GET",
        "/healthz",
        "healthz",
        summary="Liveness probe",
        tag=OPERATIONS_TAG,
        who=ANYONE,
        about="The process is alive and serving HTTP.",
        response=schemas.HealthResponse,
        calls_services=False,
        handler=handlers.healthz,
    ),
    Route(
        "GET",
        "/readyz",
        "readyz",
        summary="Readiness probe",
        tag=OPERATIONS_TAG,
        who=ANYONE,
        about="The gateway can serve: its database answers, its consumers are attached and "
        "iam-agency answers a ping; 503 with the problems otherwise.",
        response=schemas.ReadinessResponse,
        errors={503: "not ready: the body's problems say why"},
        calls_services=False,
        handler=handlers.readyz,
    ),
    Route(
        "GET",
        "/openapi.json",
        "openapi_document",
        summary="This document",
        tag=OPERATIONS_TAG,
        who=ANYONE,
        about="This API as an OpenAPI 3 document.",
        raw_response={"type": "object", "description": "An OpenAPI 3 document."},
        calls_services=False,
        handler=handlers.openapi_document,
    ),
    Route(
        "GET",
        "/docs",
        "docs",
        summary="This document as a page",
        tag=OPERATIONS_TAG,
        who=ANYONE,
        about="This API as a readable page, rendered here from the OpenAPI document.",
        media_type="text/html",
        raw_response={"type": "string"},
        calls_services=False,
        handler=handlers.docs,
    ),
)
