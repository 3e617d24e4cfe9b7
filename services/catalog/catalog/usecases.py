"""The catalog's use cases. Each takes a unit of work (``session``, ``emit``,
``commit``) and, where time matters, a clock; none imports nameko, so they run the
same under a service, in a script (``catalog.demo``) and in tests.

They answer plain dicts that ``catalog.schemas`` dumps: money as
``{"amount": 12345, "currency": "USD"}``, times as aware datetimes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload, selectinload

from catalog import domain, search
from catalog.models import Product, SavedProduct, Seller, Specification, SpecificationPrice
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, NotFound
from mercato.identity import OPERATOR, SELLER, Identity

PRODUCT_PUBLISHED = "catalog.product.published"
PRODUCT_CHANGED = "catalog.product.changed"


# -- sellers -------------------------------------------------------------------


def _insert_seller_if_missing(uow, clock: Clock, account_id: str, company_name: str) -> None:
    """Insert a seller with defaults unless one is there; never fails on a race."""
    dialect = uow.session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(Seller)
    now = clock.now()
    uow.session.execute(
        insert.values(
            account_id=account_id,
            company_name=company_name,
            currency=domain.DEFAULT_CURRENCY,
            created_at=now,
            updated_at=now,
        ).on_conflict_do_nothing(index_elements=["account_id"])
    )


def register_seller_account(
    uow, clock: Clock, *, account_id: str, name: str, account_type: str
) -> bool:
    """A new seller account gets a seller profile named after the account, so it can
    list products at once. Other account types are not sellers. Does not commit: the
    event handler commits this with its inbox row. True if the account is a seller."""
    if account_type != SELLER:
        return False
    _insert_seller_if_missing(uow, clock, account_id, name[:200])
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
    A new company name is searchable on every product of the seller at once.
    """
    session = uow.session
    _insert_seller_if_missing(uow, clock, account_id, company_name)
    seller = session.scalars(
        sa.select(Seller).where(Seller.account_id == account_id).with_for_update()
    ).one()
    renamed = seller.company_name != company_name
    seller.company_name = company_name
    seller.email = email.strip().lower()
    seller.mobile = mobile
    seller.support_range = support_range
    if currency:
        seller.currency = currency
    seller.updated_at = clock.now()
    if renamed:
        session.execute(
            sa.update(Product)
            .where(Product.seller_account_id == account_id)
            .values(search_seller=domain.normalise_text(company_name))
        )
    uow.commit()
    return _seller_profile(seller)


def seller_profile(uow, *, account_id: str) -> dict[str, Any]:
    seller = uow.session.get(Seller, account_id)
    if seller is None:
        raise NotFound("seller profile not found")
    return _seller_profile(seller)


# -- products ------------------------------------------------------------------


def _specifications(product: Product) -> list[domain.Specification]:
    return [_specification(spec) for spec in product.specifications]


def _specification(spec: Specification) -> domain.Specification:
    quantity = None
    if spec.quantity_name is not None:
        assert spec.quantity_min is not None and spec.quantity_max is not None
        quantity = domain.Quantity(spec.quantity_name, spec.quantity_min, spec.quantity_max)
    return domain.Specification(
        id=spec.id,
        name=spec.name,
        prices=tuple(
            domain.Price(price.billing_mode, price.period_unit, price.amount)
            for price in spec.prices
        ),
        quantity=quantity,
    )


def _money(amount: int, currency: str) -> dict[str, Any]:
    return domain.Money(amount, currency).to_dict()


def _specification_view(spec: domain.Specification, currency: str) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "prices": [
            {
                "billing_mode": price.billing_mode,
                "period_unit": price.period_unit,
                "price": _money(price.amount, currency),
            }
            for price in spec.prices
        ],
        "quantity": (
            {"name": spec.quantity.name, "min": spec.quantity.min, "max": spec.quantity.max}
            if spec.quantity
            else None
        ),
    }


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
            "company_name": seller.company_name,
            "email": seller.email,
            "mobile": seller.mobile,
            "support_range": seller.support_range,
        },
        "specifications": [_specification_view(spec, product.currency) for spec in specs],
        "billing_modes": _offered_modes(specs),
        "lowest_price": _money(product.lowest_price, product.currency),
        "delist_reason": product.delist_reason,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "published_at": product.published_at,
        "delisted_at": product.delisted_at,
    }


def _seller_details(product: Product) -> dict[str, Any]:
    """A product as its own seller sees it: its details and its saas endpoint."""
    return {**_details(product), "saas_endpoint_url": product.saas_endpoint_url}


def _snapshot(product: Product) -> dict[str, Any]:
    """The data of the catalog.product.* events (mercato.contracts.catalog)."""
    return {
        "product_id": product.id,
        "seller_account_id": product.seller_account_id,
        "name": product.name,
        "delivery_method": product.delivery_method,
        "category": product.category,
        "status": product.status,
        "lowest_price": _money(product.lowest_price, product.currency),
    }


def _with_specifications() -> Any:
    return selectinload(Product.specifications).selectinload(Specification.prices)


# the product page's statement, built once (see mercato.db)
_PRODUCT_PAGE = (
    sa.select(Product)
    .where(Product.id == sa.bindparam("product_id"))
    .options(joinedload(Product.specifications).joinedload(Specification.prices))
)


def _load_product(uow, product_id: str) -> Product | None:
    """One product with its seller, specifications and prices, in one query: this is
    the product page, the marketplace's hottest read."""
    return uow.session.scalars(_PRODUCT_PAGE, {"product_id": product_id}).unique().first()


def _lock_product(uow, product_id: str) -> Product | None:
    """The product row, locked until commit (PostgreSQL), so two state changes of one
    product run one after the other."""
    return uow.session.scalars(
        sa.select(Product)
        .where(Product.id == product_id)
        .options(lazyload(Product.seller))
        .with_for_update()
    ).first()


def _specification_drafts(specifications: list[dict[str, Any]]) -> list[domain.Specification]:
    return [
        domain.Specification(
            name=spec["name"],
            prices=tuple(
                domain.Price(price["billing_mode"], price.get("period_unit"), price["amount"])
                for price in spec["prices"]
            ),
            quantity=domain.Quantity(**spec["quantity"]) if spec.get("quantity") else None,
        )
        for spec in specifications
    ]


def create_product(
    uow, clock: Clock, *, seller_account_id: str, product: dict[str, Any]
) -> dict[str, Any]:
    """A new draft product of the seller, priced in the seller's currency.

    ``product`` is the loaded body of ``POST /v1/seller/products``. The seller needs a
    profile (made when its account is opened, or by ``upsert_seller_profile``); else
    422 SELLER_PROFILE_REQUIRED. Answers the seller's view (with ``saas_endpoint_url``).
    """
    session = uow.session
    seller = session.get(Seller, seller_account_id)
    if seller is None:
        raise BusinessRuleViolation(
            "set up your seller profile before listing products", code="SELLER_PROFILE_REQUIRED"
        )
    specs = _specification_drafts(product["specifications"])
    saas_endpoint_url = product.get("saas_endpoint_url")
    domain.check_product(
        delivery_method=product["delivery_method"],
        saas_endpoint_url=saas_endpoint_url,
        specifications=specs,
    )
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
    session.add(row)
    uow.commit()
    return _seller_details(row)


def publish_product(
    uow, clock: Clock, *, seller_account_id: str, product_id: str
) -> dict[str, Any]:
    """Draft -> published, by the product's own seller (another seller: NotFound); a
    saas product needs its endpoint first (422 SAAS_ENDPOINT_REQUIRED). Announces
    catalog.product.published in the same transaction. Answers the seller's view."""
    product = _lock_product(uow, product_id)
    if product is None or product.seller_account_id != seller_account_id:
        raise NotFound("product not found")
    product.status = domain.publish(
        product.status,
        delivery_method=product.delivery_method,
        saas_endpoint_url=product.saas_endpoint_url,
    )
    product.published_at = product.updated_at = clock.now()
    uow.emit(
        PRODUCT_PUBLISHED,
        subject=product.id,
        account_id=product.seller_account_id,
        data=_snapshot(product),
    )
    uow.commit()
    return _seller_details(product)


def delist_product(uow, clock: Clock, *, product_id: str, reason: str) -> dict[str, Any]:
    """Published -> delisted, by an operator: buyers no longer find, quote or save it.
    Announces catalog.product.changed in the same transaction."""
    product = _lock_product(uow, product_id)
    if product is None:
        raise NotFound("product not found")
    product.status = domain.delist(product.status)
    product.delisted_at = product.updated_at = clock.now()
    product.delist_reason = reason
    uow.emit(
        PRODUCT_CHANGED,
        subject=product.id,
        account_id=product.seller_account_id,
        data=_snapshot(product),
    )
    uow.commit()
    return _details(product)


def _may_see_unpublished(product: Product, viewer: Identity | None) -> bool:
    if viewer is None:
        return False
    return viewer.account_id == product.seller_account_id or viewer.has_role(OPERATOR)


def product_details(uow, *, product_id: str, viewer: Identity | None) -> dict[str, Any]:
    """A product as its page shows it. Drafts and delisted products exist only for
    their seller and operators; for anyone else they are NotFound."""
    product = _load_product(uow, product_id)
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
    product = uow.session.get(Product, product_id)
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
        "seller": {
            "company_name": seller.company_name,
            "email": seller.email,
            "mobile": seller.mobile,
        },
    }


def _page(items: list[dict[str, Any]], total: int, page: int, page_size: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def list_seller_products(
    uow, *, seller_account_id: str, page: int, page_size: int
) -> dict[str, Any]:
    """The seller's own products in any status, newest first."""
    session = uow.session
    owned = Product.seller_account_id == seller_account_id
    total = session.scalar(sa.select(sa.func.count(Product.id)).where(owned)) or 0
    products = list(
        session.scalars(
            sa.select(Product)
            .where(owned)
            .options(lazyload(Product.seller))
            .order_by(Product.created_at.desc(), Product.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
    )
    modes = search.billing_modes(session, [product.id for product in products])
    items = [
        {
            "id": product.id,
            "name": product.name,
            "status": product.status,
            "category": product.category,
            "delivery_method": product.delivery_method,
            "service_supervision": product.service_supervision,
            "saas_endpoint_url": product.saas_endpoint_url,
            "billing_modes": modes[product.id],
            "lowest_price": _money(product.lowest_price, product.currency),
            "delist_reason": product.delist_reason,
            "created_at": product.created_at,
            "updated_at": product.updated_at,
            "published_at": product.published_at,
            "delisted_at": product.delisted_at,
        }
        for product in products
    ]
    return _page(items, total, page, page_size)


def search_products(uow, criteria: domain.SearchCriteria) -> dict[str, Any]:
    """Published products matching ``criteria`` (see ``catalog.search``)."""
    products, total = search.search(uow.session, criteria)
    modes = search.billing_modes(uow.session, [product.id for product in products])
    items = [
        {
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
            "lowest_price": _money(product.lowest_price, product.currency),
            "published_at": product.published_at,
        }
        for product in products
    ]
    return _page(items, total, criteria.page, criteria.page_size)


# -- saved lists -----------------------------------------------------------------


def save_product(uow, clock: Clock, *, buyer_account_id: str, product_id: str) -> dict[str, Any]:
    """Add a published product to the buyer's saved list; saving it again changes
    nothing and answers the first ``saved_at``."""
    session = uow.session
    saved = session.get(SavedProduct, (buyer_account_id, product_id))
    if saved is None:
        product = session.get(Product, product_id, options=[lazyload(Product.seller)])
        if product is None or product.status != domain.PUBLISHED:
            raise NotFound("product not found")
        saved = SavedProduct(
            buyer_account_id=buyer_account_id, product_id=product_id, saved_at=clock.now()
        )
        session.add(saved)
        try:
            uow.commit()
        except IntegrityError:
            # the same buyer saved it at the same moment: the first one stands
            uow.rollback()
            saved = session.get(SavedProduct, (buyer_account_id, product_id))
            if saved is None:
                raise
    return {"product_id": saved.product_id, "saved_at": saved.saved_at}


def list_saved_products(uow, *, buyer_account_id: str, page: int, page_size: int) -> dict[str, Any]:
    """The buyer's saved list, last saved first, with what buying each one needs: its
    specifications, prices and quantity bounds, and its status (a delisted product
    stays in the list, marked, until the buyer removes it)."""
    session = uow.session
    mine = SavedProduct.buyer_account_id == buyer_account_id
    total = session.scalar(sa.select(sa.func.count()).select_from(SavedProduct).where(mine)) or 0
    rows = session.execute(
        sa.select(SavedProduct, Product)
        .join(Product, SavedProduct.product_id == Product.id)
        .where(mine)
        .options(_with_specifications())
        .order_by(SavedProduct.saved_at.desc(), SavedProduct.product_id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    items = []
    for saved, product in rows:
        specs = _specifications(product)
        items.append(
            {
                "product_id": product.id,
                "name": product.name,
                "status": product.status,
                "seller": {
                    "id": product.seller.account_id,
                    "company_name": product.seller.company_name,
                },
                "delivery_method": product.delivery_method,
                "service_supervision": product.service_supervision,
                "specifications": [_specification_view(spec, product.currency) for spec in specs],
                "lowest_price": _money(product.lowest_price, product.currency),
                "saved_at": saved.saved_at,
            }
        )
    return _page(items, total, page, page_size)


def remove_saved_product(uow, *, buyer_account_id: str, product_id: str) -> None:
    """Take a product off the buyer's saved list; NotFound if it is not on it."""
    removed = uow.session.execute(
        sa.delete(SavedProduct).where(
            SavedProduct.buyer_account_id == buyer_account_id,
            SavedProduct.product_id == product_id,
        )
    )
    if not removed.rowcount:
        uow.rollback()
        raise NotFound("product not in your saved list")
    uow.commit()


# -- quotes ------------------------------------------------------------------------

_PRODUCTS = Product.__table__
_SELLERS = Seller.__table__
_SPECIFICATIONS = Specification.__table__
_PRICES = SpecificationPrice.__table__
# A quote reads one specification of a product with its prices, and the few product and
# seller fields an order keeps: one row per price (none when the specification is not
# the product's), as one Core SELECT built once. The product page's ORM load (every
# specification and price, as objects) cost about three times as much.
_QUOTED_SPECIFICATION = (
    sa.select(
        _PRODUCTS.c.id.label("product_id"),
        _PRODUCTS.c.name.label("product_name"),
        _PRODUCTS.c.status,
        _PRODUCTS.c.currency,
        _PRODUCTS.c.seller_account_id,
        _SELLERS.c.company_name.label("seller_company_name"),
        _PRODUCTS.c.delivery_method,
        _PRODUCTS.c.service_supervision,
        _PRODUCTS.c.product_guide_url,
        _SPECIFICATIONS.c.id.label("specification_id"),
        _SPECIFICATIONS.c.name.label("specification_name"),
        _SPECIFICATIONS.c.quantity_name,
        _SPECIFICATIONS.c.quantity_min,
        _SPECIFICATIONS.c.quantity_max,
        _PRICES.c.billing_mode,
        _PRICES.c.period_unit,
        _PRICES.c.amount,
    )
    .select_from(
        _PRODUCTS.join(_SELLERS, _SELLERS.c.account_id == _PRODUCTS.c.seller_account_id)
        .outerjoin(
            _SPECIFICATIONS,
            sa.and_(
                _SPECIFICATIONS.c.product_id == _PRODUCTS.c.id,
                _SPECIFICATIONS.c.id == sa.bindparam("specification_id"),
            ),
        )
        .outerjoin(_PRICES, _PRICES.c.specification_id == _SPECIFICATIONS.c.id)
    )
    .where(_PRODUCTS.c.id == sa.bindparam("product_id"))
    .order_by(_PRICES.c.id)
)


def quote(
    uow,
    *,
    product_id: str,
    specification_id: str,
    billing_mode: str,
    period: dict[str, Any] | None,
    quantity: int | None,
) -> dict[str, Any]:
    """What a configuration of a published product costs now (orders fix this price
    into an order). NotFound for an unknown, unpublished product or a specification
    not its own; ValidationError naming the field for a configuration it does not offer.
    """
    rows = uow.session.execute(
        _QUOTED_SPECIFICATION, {"product_id": product_id, "specification_id": specification_id}
    ).all()
    if not rows or rows[0].status != domain.PUBLISHED:
        raise NotFound("product not found")
    first = rows[0]
    if first.specification_id is None:
        raise NotFound("specification not found")
    quantity_dimension = None
    if first.quantity_name is not None:
        quantity_dimension = domain.Quantity(
            first.quantity_name, first.quantity_min, first.quantity_max
        )
    specification = domain.Specification(
        id=first.specification_id,
        name=first.specification_name,
        prices=tuple(
            domain.Price(row.billing_mode, row.period_unit, row.amount)
            for row in rows
            if row.billing_mode is not None
        ),
        quantity=quantity_dimension,
    )
    priced = domain.price_configuration(
        specification,
        currency=first.currency,
        billing_mode=billing_mode,
        period=domain.Period(**period) if period else None,
        quantity=quantity,
    )
    return {
        "product_id": first.product_id,
        "product_name": first.product_name,
        "seller_account_id": first.seller_account_id,
        "seller_company_name": first.seller_company_name,
        "delivery_method": first.delivery_method,
        "service_supervision": first.service_supervision,
        "product_guide_url": first.product_guide_url,
        "specification_id": first.specification_id,
        "specification_name": first.specification_name,
        "billing_mode": priced.billing_mode,
        "period": priced.period.to_dict() if priced.period else None,
        "quantity": priced.quantity,
        "unit_price": priced.unit_price.to_dict(),
        "amount": priced.amount.to_dict(),
    }
