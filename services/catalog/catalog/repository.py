"""Every statement the catalog's use cases run, behind a named method.

The use cases reach the catalog's tables only through ``CatalogRepository`` (as
``uow.catalog``), so they read as the flow and run on an in-memory stand-in in unit
tests (``catalog.tests.fakes``). The hot reads keep the statements they are built
on once, at import, their values bound per call (see ``mercato.db``): the product
page (``product_page``) and the quote (``quotable``); docs/performance.md says why
each is written the way it is. Search is ``catalog.search``'s, called from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, lazyload, selectinload

from catalog import domain, search
from catalog.models import Product, SavedProduct, Seller, Specification, SpecificationPrice
from mercato.db import Page, fetch_page, insert_or_ignore

_PRODUCTS = cast(sa.Table, Product.__table__)
_SELLERS = cast(sa.Table, Seller.__table__)
_SPECIFICATIONS = cast(sa.Table, Specification.__table__)
_PRICES = cast(sa.Table, SpecificationPrice.__table__)

# The product page, the marketplace's hottest read: one product with its seller,
# specifications and prices, in one query.
_PRODUCT_PAGE = (
    sa.select(Product)
    .where(Product.id == sa.bindparam("product_id"))
    .options(joinedload(Product.specifications).joinedload(Specification.prices))
)

_PRODUCT_STATUS = sa.select(_PRODUCTS.c.status).where(_PRODUCTS.c.id == sa.bindparam("product_id"))
_REQUEST_TEMPLATE = sa.select(
    _PRODUCTS.c.status, _PRODUCTS.c.request_template.label("template")
).where(_PRODUCTS.c.id == sa.bindparam("product_id"))

# A quote reads one specification of a product with its prices, and the few product
# and seller fields an order keeps: one row per price (none when the specification is
# not the product's), as one Core SELECT, far cheaper than the product page's load of
# every specification and price as objects (docs/performance.md, "catalog: a quote").
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
        _SPECIFICATIONS.c.image,
        _SPECIFICATIONS.c.cloud_prices,
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


class CatalogRepository:
    """The catalog's sellers, products and saved lists, for one unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- sellers -------------------------------------------------------------------

    def seller(self, account_id: str) -> Seller | None:
        return self.session.get(Seller, account_id)

    def add_seller_if_missing(
        self, account_id: str, company_name: str, currency: str, now: dt.datetime
    ) -> bool:
        """A seller with this name and currency unless one is there; a concurrent first
        insert wins quietly. True when this one was written."""
        return insert_or_ignore(
            self.session,
            Seller,
            {
                "account_id": account_id,
                "company_name": company_name,
                "currency": currency,
                "created_at": now,
                "updated_at": now,
            },
            unique=["account_id"],
        )

    def lock_seller(self, account_id: str) -> Seller:
        """The seller's row, locked until commit (PostgreSQL)."""
        return self.session.scalars(
            sa.select(Seller).where(Seller.account_id == account_id).with_for_update()
        ).one()

    def index_seller_name(self, account_id: str, company_name: str) -> None:
        """Make every product of the seller searchable by its (new) company name."""
        self.session.execute(
            sa.update(Product)
            .where(Product.seller_account_id == account_id)
            .values(search_seller=domain.normalise_text(company_name))
        )

    # -- products ------------------------------------------------------------------

    def add_product(self, product: Product) -> None:
        """A new product with its specifications and prices, written at commit."""
        self.session.add(product)

    def product_page(self, product_id: str) -> Product | None:
        """The product with its seller, specifications and prices, in one query."""
        return self.session.scalars(_PRODUCT_PAGE, {"product_id": product_id}).unique().first()

    def product_with_seller(self, product_id: str) -> Product | None:
        return self.session.get(Product, product_id)

    def product_status(self, product_id: str) -> str | None:
        return self.session.scalar(_PRODUCT_STATUS, {"product_id": product_id})

    def request_template_of(self, product_id: str) -> tuple[str, str | None] | None:
        """The product's status and request template; None for an unknown product."""
        row = self.session.execute(_REQUEST_TEMPLATE, {"product_id": product_id}).first()
        return None if row is None else (row.status, row.template)

    def lock_product(self, product_id: str) -> Product | None:
        """The product row, locked until commit (PostgreSQL), so two moves of one
        product run one after the other."""
        return self.session.scalars(
            sa.select(Product)
            .where(Product.id == product_id)
            .options(lazyload(Product.seller))
            .with_for_update()
        ).first()

    def seller_products(self, seller_account_id: str, page: int, page_size: int) -> Page:
        """A page of the seller's products in any status, newest first."""
        return fetch_page(
            self.session,
            sa.select(Product)
            .where(Product.seller_account_id == seller_account_id)
            .options(lazyload(Product.seller))
            .order_by(Product.created_at.desc(), Product.id),
            page,
            page_size,
        )

    def search(self, criteria: domain.SearchCriteria) -> Page:
        """A page of the published products matching ``criteria`` (``catalog.search``)."""
        products, total = search.search(self.session, criteria)
        return Page(products, total, criteria.page, criteria.page_size)

    def billing_modes(self, product_ids: list[str]) -> dict[str, list[str]]:
        """The billing modes each product offers, in ``domain.BILLING_MODES`` order."""
        return search.billing_modes(self.session, product_ids)

    def quotable(self, product_id: str, specification_id: str) -> domain.Quotable | None:
        """What a quote of the product's specification needs; None for an unknown
        product. Its ``specification`` is None when it is not the product's."""
        rows = self.session.execute(
            _QUOTED_SPECIFICATION,
            {"product_id": product_id, "specification_id": specification_id},
        ).all()
        if not rows:
            return None
        first = rows[0]
        specification = None
        if first.specification_id is not None:
            quantity = None
            if first.quantity_name is not None:
                quantity = domain.Quantity(
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
                quantity=quantity,
                image=first.image,
                cloud_prices=tuple(
                    domain.CloudPrice.from_dict(price) for price in first.cloud_prices or ()
                ),
            )
        return domain.Quotable(
            product_id=first.product_id,
            product_name=first.product_name,
            status=first.status,
            currency=first.currency,
            seller_account_id=first.seller_account_id,
            seller_company_name=first.seller_company_name,
            delivery_method=first.delivery_method,
            service_supervision=first.service_supervision,
            product_guide_url=first.product_guide_url,
            specification=specification,
        )

    # -- saved lists -----------------------------------------------------------------

    def saved_product(self, buyer_account_id: str, product_id: str) -> SavedProduct | None:
        return self.session.get(SavedProduct, (buyer_account_id, product_id))

    def save_to_list(self, buyer_account_id: str, product_id: str, now: dt.datetime) -> bool:
        """Put the product on the buyer's list unless it is there: when the same buyer
        saves it twice at once, the first one stands. True when this one was written."""
        return insert_or_ignore(
            self.session,
            SavedProduct,
            {"buyer_account_id": buyer_account_id, "product_id": product_id, "saved_at": now},
            unique=["buyer_account_id", "product_id"],
        )

    def saved_products(self, buyer_account_id: str, page: int, page_size: int) -> Page:
        """A page of the buyer's list, last saved first, as ``(saved, product)`` rows
        with each product's specifications and prices."""
        return fetch_page(
            self.session,
            sa.select(SavedProduct, Product)
            .join(Product, SavedProduct.product_id == Product.id)
            .where(SavedProduct.buyer_account_id == buyer_account_id)
            .options(selectinload(Product.specifications).selectinload(Specification.prices))
            .order_by(SavedProduct.saved_at.desc(), SavedProduct.product_id),
            page,
            page_size,
            scalars=False,
        )

    def remove_from_list(self, buyer_account_id: str, product_id: str) -> bool:
        """Take the product off the buyer's list; False when it was not on it."""
        removed = self.session.execute(
            sa.delete(SavedProduct).where(
                SavedProduct.buyer_account_id == buyer_account_id,
                SavedProduct.product_id == product_id,
            )
        )
        return bool(cast(sa.CursorResult, removed).rowcount)

    # -- demo data ---------------------------------------------------------------------

    def insert_many(
        self,
        products: list[dict[str, Any]],
        specifications: list[dict[str, Any]],
        prices: list[dict[str, Any]],
    ) -> None:
        """Rows written as they are, in multi-row inserts (``catalog.demo``)."""
        self.session.execute(_PRODUCTS.insert(), products)
        self.session.execute(_SPECIFICATIONS.insert(), specifications)
        self.session.execute(_PRICES.insert(), prices)

    def refresh_statistics(self) -> None:
        """After a bulk load on PostgreSQL: fresh statistics, or the planner takes the
        loaded tables for tiny ones and skips the search index until autovacuum comes
        round. (SQLite plans without them.)"""
        if self.session.get_bind().dialect.name == "postgresql":
            for table in ("products", "specifications", "prices"):
                self.session.execute(sa.text(f"ANALYZE {table}"))
