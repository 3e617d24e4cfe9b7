"""The catalog's use cases. Each takes a unit of work (its repository
``uow.catalog``, ``emit_recorded``, ``commit``) and, where time matters, a clock;
none imports nameko or builds SQL, so they run the same under a service, in a script
and in tests (on ``catalog.tests.fakes``). A use case that writes commits once, at
its end; one called from an event handler does not commit (the inbox does).

They answer plain dicts that ``catalog.schemas`` dumps: money as
``{"amount": 12345, "currency": "USD"}``, times as aware datetimes.
"""

from __future__ import annotations

from typing import Any

from catalog import domain
from catalog.models import Product, Seller, Specification, SpecificationPrice
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, NotFound
from mercato.identity import OPERATOR, SELLER, Identity
from mercato.money import Money, money, require_marketplace_currency
from mercato.request_keys import RequestKey

# -- sellers -------------------------------------------------------------------


def register_seller_account(
    uow, clock: Clock, *, account_id: str, name: str, account_type: str
) -> bool:
    """A new seller account gets a seller profile named after the account, so it can
    list products at once. Other account types are not sellers. Does not commit: the
    event handler commits this with its inbox row. True if the account is a seller."""
    if account_type != SELLER:
        return False
    uow.catalog.add_seller_if_missing(account_id, name[:200], domain.seller_currency(), clock.now())
    return True


def _seller_profile(seller: Seller) -> dict[str, Any]:
    return {
        "account_id": seller.account_id,
        "company_name": seller.company_name,
        "email": seller.email,
        "mobile": seller.mobile,
        "support_range": seller.support_range,
        "currency": seller.currency,
        "created_at": seller.created_at,
        "updated_at": seller.updated_at,
    }


def upsert_seller_profile(
    uow,
    clock: Clock,
    *,
    account_id: str,
    company_name: str,
    email: str,
    mobile: str | None,
    support_range: str | None,
    currency: str | None,
) -> dict[str, Any]:
    """Create or replace the caller's seller profile.

    ``currency`` (absent: unchanged, USD for a new seller) is that of the products the
    seller creates from now on; existing products keep the currency they were priced in.
    A new company name is searchable on every product of the seller at once. A currency
    other than the marketplace's is refused naming ``currency``, and changes nothing.
    """
    if currency:
        require_marketplace_currency(currency, "currency")
    uow.catalog.add_seller_if_missing(
        account_id, company_name, domain.seller_currency(), clock.now()
    )
    seller = uow.catalog.lock_seller(account_id)
    renamed = seller.company_name != company_name
    seller.company_name = company_name
    seller.email = email.strip().lower()
    seller.mobile = mobile
    seller.support_range = support_range
    if currency:
        seller.currency = currency
    seller.updated_at = clock.now()
    if renamed:
        uow.catalog.index_seller_name(account_id, company_name)
    uow.commit()
    return _seller_profile(seller)


def seller_profile(uow, *, account_id: str) -> dict[str, Any]:
    seller = uow.catalog.seller(account_id)
    if seller is None:
        raise NotFound("seller profile not found")
    return _seller_profile(seller)


# -- products ------------------------------------------------------------------


def _specifications(product: Product) -> list[domain.Specification]:
    return [spec.to_domain() for spec in product.specifications]


def _specification_view(spec: domain.Specification, currency: str) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "prices": [
            {
                "billing_mode": price.billing_mode,
                "period_unit": price.period_unit,
                "price": money(price.amount, currency),
            }
            for price in spec.prices
        ],
        "quantity": (
            {"name": spec.quantity.name, "min": spec.quantity.min, "max": spec.quantity.max}
            if spec.quantity
            else None
        ),
        "image": spec.image,
        "cloud_prices": [price.to_dict() for price in spec.cloud_prices],
    }


def _seller_contact(seller: Seller) -> dict[str, Any]:
    """Whom to reach at a product's seller: on its page, and for its delivery."""
    return {"company_name": seller.company_name, "email": seller.email, "mobile": seller.mobile}


def _offered_modes(specs: list[domain.Specification]) -> list[str]:
    return [mode for mode in domain.BILLING_MODES if any(spec.offers(mode) for spec in specs)]


def _details(product: Product) -> dict[str, Any]:
    """A product as buyers see it (``get_product``). Never the saas endpoint: that is
    for its seller (``_seller_details``) and provisioning (``delivery_settings``)."""
    specs = _specifications(product)
    seller = product.seller
    return {
        "id": product.id,
        "status": product.status,
        "name": product.name,
        "summary": product.summary,
        "description": product.description,
        "category": product.category,
        "delivery_method": product.delivery_method,
        "service_supervision": product.service_supervision,
        "product_guide_url": product.product_guide_url,
        "terms": product.terms,
        "seller": {
            "id": seller.account_id,
            **_seller_contact(seller),
            "support_range": seller.support_range,
        },
        "specifications": [_specification_view(spec, product.currency) for spec in specs],
        "billing_modes": _offered_modes(specs),
        "lowest_price": money(product.lowest_price, product.currency),
        "delist_reason": product.delist_reason,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "published_at": product.published_at,
        "delisted_at": product.delisted_at,
    }


def _seller_details(product: Product) -> dict[str, Any]:
    """A product as its own seller sees it: its details, its saas endpoint and the
    template of its buyers' service requests."""
    return {
        **_details(product),
        "saas_endpoint_url": product.saas_endpoint_url,
        "request_template": product.request_template,
    }


def _specification_drafts(specifications: list[dict[str, Any]]) -> list[domain.Specification]:
    return [
        domain.Specification(
            name=spec["name"],
            prices=tuple(
                domain.Price(price["billing_mode"], price.get("period_unit"), price["amount"])
                for price in spec["prices"]
            ),
            quantity=domain.Quantity(**spec["quantity"]) if spec.get("quantity") else None,
            image=spec.get("image"),
            cloud_prices=tuple(
                domain.CloudPrice.from_dict(p) for p in spec.get("cloud_prices") or ()
            ),
        )
        for spec in specifications
    ]


def create_product(
    uow,
    clock: Clock,
    *,
    seller_account_id: str,
    product: dict[str, Any],
    request_key: str | None = None,
) -> dict[str, Any]:
    """A new draft product of the seller, priced in the seller's currency.

    ``product`` is the loaded body of ``POST /v1/seller/products``. The seller needs a
    profile (made when its account is opened, or by ``upsert_seller_profile``); else
    422 SELLER_PROFILE_REQUIRED. A license or a professional service must be
    supervised (ValidationError naming ``service_supervision``). Answers the seller's
    view (with ``saas_endpoint_url`` and ``request_template``). With a
    ``request_key`` (``mercato.request_keys``) a retry answers the product the first
    request created.
    """
    kept = RequestKey.of(
        request_key, account_id=seller_account_id, operation="create_product", arguments=product
    )
    first = uow.request_keys.first_result(kept)
    if first is not None:
        return _seller_details(uow.catalog.product_page(first))
    seller = uow.catalog.seller(seller_account_id)
    if seller is None:
        raise BusinessRuleViolation(
            "set up your seller profile before listing products", code="SELLER_PROFILE_REQUIRED"
        )
    specs = _specification_drafts(product["specifications"])
    saas_endpoint_url = product.get("saas_endpoint_url")
    domain.check_product(
        delivery_method=product["delivery_method"],
        service_supervision=product["service_supervision"],
        saas_endpoint_url=saas_endpoint_url,
        specifications=specs,
    )
    row = _new_product(seller, product, specs, saas_endpoint_url, clock)
    uow.catalog.add_product(row)
    uow.request_keys.keep(kept, row.id, clock.now())
    uow.commit()
    return _seller_details(row)


def _new_product(
    seller: Seller,
    product: dict[str, Any],
    specs: list[domain.Specification],
    saas_endpoint_url: str | None,
    clock: Clock,
) -> Product:
    """The draft's row, with its specifications and prices, its search text normalised."""
    now = clock.now()
    row = Product(
        id=new_id("prd"),
        seller_account_id=seller.account_id,
        name=product["name"],
        summary=product["summary"],
        description=product["description"],
        category=product["category"],
        delivery_method=product["delivery_method"],
        service_supervision=product["service_supervision"],
        product_guide_url=product.get("product_guide_url"),
        saas_endpoint_url=saas_endpoint_url,
        terms=product["terms"],
        status=domain.DRAFT,
        currency=seller.currency,
        lowest_price=domain.lowest_price(specs),
        created_at=now,
        updated_at=now,
        search_name=domain.normalise_text(product["name"]),
        search_seller=domain.normalise_text(seller.company_name),
        search_body=domain.normalise_text(f"{product['summary']}\n{product['description']}"),
    )
    for position, spec in enumerate(specs):
        spec_row = Specification(
            id=new_id("spc"),
            position=position,
            name=spec.name,
            quantity_name=spec.quantity.name if spec.quantity else None,
            quantity_min=spec.quantity.min if spec.quantity else None,
            quantity_max=spec.quantity.max if spec.quantity else None,
            image=spec.image,
            cloud_prices=[price.to_dict() for price in spec.cloud_prices] or None,
        )
        spec_row.prices = [
            SpecificationPrice(
                product_id=row.id,
                billing_mode=price.billing_mode,
                period_unit=price.period_unit,
                amount=price.amount,
            )
            for price in spec.prices
        ]
        row.specifications.append(spec_row)
    return row


def publish_product(
    uow,
    clock: Clock,
    *,
    seller_account_id: str,
    product_id: str,
    request_key: str | None = None,
) -> dict[str, Any]:
    """Draft -> published, by the product's own seller (another seller: NotFound); a
    saas product needs its endpoint first (422 SAAS_ENDPOINT_REQUIRED). Announces
    catalog.product.published in the same transaction. Answers the seller's view; a
    retry of a publish that succeeded (same ``request_key``) answers the product
    rather than a conflict (it is no draft any more)."""
    product = uow.catalog.lock_product(product_id)
    if product is None or product.seller_account_id != seller_account_id:
        raise NotFound("product not found")
    kept = RequestKey.of(
        request_key,
        account_id=seller_account_id,
        operation="publish_product",
        arguments={"product_id": product_id},
    )
    if uow.request_keys.first_result(kept) is None:
        product.publish(clock.now())
        uow.emit_recorded(product)
        uow.request_keys.keep(kept, product.id, clock.now())
        uow.commit()
    return _seller_details(uow.catalog.product_page(product_id))


def delist_product(
    uow,
    clock: Clock,
    *,
    product_id: str,
    reason: str,
    operator_account_id: str | None = None,
    request_key: str | None = None,
) -> dict[str, Any]:
    """Published -> delisted, by an operator: buyers no longer find, quote or save it.
    Announces catalog.product.changed in the same transaction. A retry of a delist
    that succeeded (the operator's same ``request_key``) answers the product."""
    product = uow.catalog.lock_product(product_id)
    if product is None:
        raise NotFound("product not found")
    kept = None
    if operator_account_id is not None:
        kept = RequestKey.of(
            request_key,
            account_id=operator_account_id,
            operation="delist_product",
            arguments={"product_id": product_id, "reason": reason},
        )
    if uow.request_keys.first_result(kept) is None:
        product.delist(reason, clock.now())
        uow.emit_recorded(product)
        uow.request_keys.keep(kept, product.id, clock.now())
        uow.commit()
    return _details(uow.catalog.product_page(product_id))


def _may_see_unpublished(product: Product, viewer: Identity | None) -> bool:
    if viewer is None:
        return False
    return viewer.account_id == product.seller_account_id or viewer.has_role(OPERATOR)


def product_details(uow, *, product_id: str, viewer: Identity | None) -> dict[str, Any]:
    """A product as its page shows it. Drafts and delisted products exist only for
    their seller and operators; for anyone else they are NotFound."""
    product = uow.catalog.product_page(product_id)
    if product is None:
        raise NotFound("product not found")
    if product.status != domain.PUBLISHED and not _may_see_unpublished(product, viewer):
        raise NotFound("product not found")
    return _details(product)


def delivery_settings(uow, *, product_id: str) -> dict[str, Any]:
    """What delivering a product needs, for provisioning: how it is delivered, the
    saas endpoint, the guide, and whom to contact at the seller. A delisted product
    still answers (a paid order of it must still be delivered); a draft, never
    orderable, is NotFound like an unknown product.

    ``{"product_id": "prd_…", "seller_account_id": "acc_…", "delivery_method": "saas",
    "service_supervision": false, "saas_endpoint_url": "https://seller.example.com/saas",
    "product_guide_url": "https://…", "seller": {"company_name": "Acme Cloud Ltd",
    "email": "sales@acme.example", "mobile": "+86 755 2878 0808"}}``
    """
    product = uow.catalog.product_with_seller(product_id)
    if product is None or product.status == domain.DRAFT:
        raise NotFound("product not found")
    seller = product.seller
    return {
        "product_id": product.id,
        "seller_account_id": product.seller_account_id,
        "delivery_method": product.delivery_method,
        "service_supervision": product.service_supervision,
        "saas_endpoint_url": product.saas_endpoint_url,
        "product_guide_url": product.product_guide_url,
        "seller": _seller_contact(seller),
    }


def set_request_template(
    uow, clock: Clock, *, seller_account_id: str, product_id: str, template: str
) -> dict[str, Any]:
    """The seller's template of what a buyer writes in a service request for the
    product (any status; another seller's product is NotFound). An empty template
    removes it. Setting it again replaces it; two at once are applied one after the
    other under the product's row lock, and the last one stands."""
    product = uow.catalog.lock_product(product_id)
    if product is None or product.seller_account_id != seller_account_id:
        raise NotFound("product not found")
    product.request_template = template or None
    product.updated_at = clock.now()
    uow.commit()
    return {"product_id": product.id, "template": product.request_template}


def request_template(uow, *, product_id: str) -> dict[str, Any]:
    """The template of a product's service requests, for supervision; ``template`` is
    None when its seller has set none. Like ``delivery_settings``: a delisted product
    still answers (its paid orders are still served), a draft is NotFound."""
    found = uow.catalog.request_template_of(product_id)
    if found is None or found[0] == domain.DRAFT:
        raise NotFound("product not found")
    _status, template = found
    return {"product_id": product_id, "template": template}


def list_seller_products(
    uow, *, seller_account_id: str, page: int, page_size: int
) -> dict[str, Any]:
    """The seller's own products in any status, newest first."""
    found = uow.catalog.seller_products(seller_account_id, page, page_size)
    modes = uow.catalog.billing_modes([product.id for product in found.items])
    return found.view(
        lambda product: {
            "id": product.id,
            "name": product.name,
            "status": product.status,
            "category": product.category,
            "delivery_method": product.delivery_method,
            "service_supervision": product.service_supervision,
            "saas_endpoint_url": product.saas_endpoint_url,
            "request_template": product.request_template,
            "billing_modes": modes[product.id],
            "lowest_price": money(product.lowest_price, product.currency),
            "delist_reason": product.delist_reason,
            "created_at": product.created_at,
            "updated_at": product.updated_at,
            "published_at": product.published_at,
            "delisted_at": product.delisted_at,
        }
    )


def search_products(uow, criteria: domain.SearchCriteria) -> dict[str, Any]:
    """Published products matching ``criteria`` (see ``catalog.search``)."""
    found = uow.catalog.search(criteria)
    modes = uow.catalog.billing_modes([product.id for product in found.items])
    return found.view(
        lambda product: {
            "id": product.id,
            "name": product.name,
            "summary": product.summary,
            "category": product.category,
            "delivery_method": product.delivery_method,
            "service_supervision": product.service_supervision,
            "seller": {
                "id": product.seller.account_id,
                "company_name": product.seller.company_name,
            },
            "billing_modes": modes[product.id],
            "lowest_price": money(product.lowest_price, product.currency),
            "published_at": product.published_at,
        }
    )


# -- saved lists -----------------------------------------------------------------


def save_product(uow, clock: Clock, *, buyer_account_id: str, product_id: str) -> dict[str, Any]:
    """Add a published product to the buyer's saved list; saving it again changes
    nothing and answers the first ``saved_at`` (also when the same buyer saves it twice
    at once)."""
    saved = uow.catalog.saved_product(buyer_account_id, product_id)
    if saved is None:
        if uow.catalog.product_status(product_id) != domain.PUBLISHED:
            raise NotFound("product not found")
        uow.catalog.save_to_list(buyer_account_id, product_id, clock.now())
        saved = uow.catalog.saved_product(buyer_account_id, product_id)
    uow.commit()
    return {"product_id": saved.product_id, "saved_at": saved.saved_at}


def list_saved_products(uow, *, buyer_account_id: str, page: int, page_size: int) -> dict[str, Any]:
    """The buyer's saved list, last saved first, with what buying each one needs: its
    specifications, prices and quantity bounds, and its status (a delisted product
    stays in the list, marked, until the buyer removes it)."""
    found = uow.catalog.saved_products(buyer_account_id, page, page_size)
    return found.view(lambda row: _saved_view(*row))


def _saved_view(saved, product: Product) -> dict[str, Any]:
    return {
        "product_id": product.id,
        "name": product.name,
        "status": product.status,
        "seller": {
            "id": product.seller.account_id,
            "company_name": product.seller.company_name,
        },
        "delivery_method": product.delivery_method,
        "service_supervision": product.service_supervision,
        "specifications": [
            _specification_view(spec, product.currency) for spec in _specifications(product)
        ],
        "lowest_price": money(product.lowest_price, product.currency),
        "saved_at": saved.saved_at,
    }


def remove_saved_product(uow, *, buyer_account_id: str, product_id: str) -> None:
    """Take a product off the buyer's saved list; NotFound if it is not on it."""
    if not uow.catalog.remove_from_list(buyer_account_id, product_id):
        raise NotFound("product not in your saved list")
    uow.commit()


# -- quotes ------------------------------------------------------------------------


def quote(
    uow,
    *,
    product_id: str,
    specification_id: str,
    billing_mode: str,
    period: dict[str, Any] | None,
    quantity: int | None,
    deployment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a configuration of a published product costs now (orders fix this price
    into an order). NotFound for an unknown, unpublished product or a specification
    not its own; ValidationError naming the field for a configuration it does not offer.

    An image is priced with the deployment's cloud resources (``deployment``, required
    for it): ``amount`` is then the breakdown's total, and the answer carries the
    image (what provisioning deploys).
    """
    offer = uow.catalog.quotable(product_id, specification_id)
    if offer is None or offer.status != domain.PUBLISHED:
        raise NotFound("product not found")
    specification = offer.specification
    if specification is None:
        raise NotFound("specification not found")
    priced = domain.price_configuration(
        specification,
        currency=offer.currency,
        billing_mode=billing_mode,
        period=domain.Period(**period) if period else None,
        quantity=quantity,
    )
    breakdown = domain.price_deployment(
        specification,
        priced,
        domain.DeploymentSizing.from_dict(deployment) if deployment else None,
    )
    amount = priced.amount
    if breakdown:
        amount = Money(sum(line.amount.amount for line in breakdown), amount.currency)
    else:
        breakdown = (
            domain.ChargeLine(
                "product", specification.name, priced.quantity, priced.unit_price, priced.amount
            ),
        )
    return {
        "product_id": offer.product_id,
        "product_name": offer.product_name,
        "seller_account_id": offer.seller_account_id,
        "seller_company_name": offer.seller_company_name,
        "delivery_method": offer.delivery_method,
        "service_supervision": offer.service_supervision,
        "product_guide_url": offer.product_guide_url,
        "specification_id": specification.id,
        "specification_name": specification.name,
        "billing_mode": priced.billing_mode,
        "period": priced.period.to_dict() if priced.period else None,
        "quantity": priced.quantity,
        "unit_price": priced.unit_price.to_dict(),
        "amount": amount.to_dict(),
        "breakdown": [line.to_dict() for line in breakdown],
        "image": specification.image,
    }
