"""The catalog's repository in memory, for use-case tests that run in milliseconds.

``FakeCatalogRepository`` answers the named methods of ``catalog.repository`` from
dicts of mapped objects (never added to a session), so the use cases run unchanged::

    uow = FakeUnitOfWork(catalog=FakeCatalogRepository())

Search is left out: its SQL is the point, and ``test_search.py`` runs it on both
backends.
"""

from __future__ import annotations

import datetime as dt

from catalog import domain
from catalog.models import Product, SavedProduct, Seller
from mercato.db import Page
from mercato_testing.fakes import InMemoryRepository


def _page(items: list, page: int, page_size: int) -> Page:
    start = (page - 1) * page_size
    return Page(items[start : start + page_size], len(items), page, page_size)


class FakeCatalogRepository(InMemoryRepository):
    """Tables ``sellers`` (by account id), ``products`` (by id) and ``saved`` (by
    ``(buyer, product)``)."""

    # -- sellers -------------------------------------------------------------------

    def seller(self, account_id: str) -> Seller | None:
        return self.table("sellers").get(account_id)

    def add_seller_if_missing(
        self, account_id: str, company_name: str, currency: str, now: dt.datetime
    ) -> bool:
        sellers = self.table("sellers")
        if account_id in sellers:
            return False
        sellers[account_id] = Seller(
            account_id=account_id,
            company_name=company_name,
            currency=currency,
            created_at=now,
            updated_at=now,
        )
        return True

    def lock_seller(self, account_id: str) -> Seller:
        return self.table("sellers")[account_id]

    def index_seller_name(self, account_id: str, company_name: str) -> None:
        for product in self.table("products").values():
            if product.seller_account_id == account_id:
                product.search_seller = domain.normalise_text(company_name)

    # -- products ------------------------------------------------------------------

    def add_product(self, product: Product) -> None:
        product.seller = self.table("sellers")[product.seller_account_id]
        for spec in product.specifications:
            spec.product_id = product.id
            for price in spec.prices:
                price.specification_id = spec.id
        self.table("products")[product.id] = product

    def product_page(self, product_id: str) -> Product | None:
        return self.table("products").get(product_id)

    product_with_seller = product_page
    lock_product = product_page

    def product_status(self, product_id: str) -> str | None:
        product = self.table("products").get(product_id)
        return product.status if product is not None else None

    def request_template_of(self, product_id: str) -> tuple[str, str | None] | None:
        product = self.table("products").get(product_id)
        return None if product is None else (product.status, product.request_template)

    def seller_products(self, seller_account_id: str, page: int, page_size: int) -> Page:
        owned = [
            product
            for product in self.table("products").values()
            if product.seller_account_id == seller_account_id
        ]
        owned.sort(key=lambda product: product.id)
        owned.sort(key=lambda product: product.created_at, reverse=True)
        return _page(owned, page, page_size)

    def billing_modes(self, product_ids: list[str]) -> dict[str, list[str]]:
        products = self.table("products")
        return {
            product_id: [
                mode
                for mode in domain.BILLING_MODES
                if any(
                    price.billing_mode == mode
                    for spec in products[product_id].specifications
                    for price in spec.prices
                )
            ]
            for product_id in product_ids
        }

    def quotable(self, product_id: str, specification_id: str) -> domain.Quotable | None:
        product = self.table("products").get(product_id)
        if product is None:
            return None
        specification = next(
            (spec.to_domain() for spec in product.specifications if spec.id == specification_id),
            None,
        )
        return domain.Quotable(
            product_id=product.id,
            product_name=product.name,
            status=product.status,
            currency=product.currency,
            seller_account_id=product.seller_account_id,
            seller_company_name=product.seller.company_name,
            delivery_method=product.delivery_method,
            service_supervision=product.service_supervision,
            product_guide_url=product.product_guide_url,
            specification=specification,
        )

    # -- saved lists -----------------------------------------------------------------

    def saved_product(self, buyer_account_id: str, product_id: str) -> SavedProduct | None:
        return self.table("saved").get((buyer_account_id, product_id))

    def save_to_list(self, buyer_account_id: str, product_id: str, now: dt.datetime) -> bool:
        saved = self.table("saved")
        if (buyer_account_id, product_id) in saved:
            return False
        saved[buyer_account_id, product_id] = SavedProduct(
            buyer_account_id=buyer_account_id, product_id=product_id, saved_at=now
        )
        return True

    def saved_products(self, buyer_account_id: str, page: int, page_size: int) -> Page:
        products = self.table("products")
        mine = [
            (saved, products[saved.product_id])
            for (buyer, _), saved in self.table("saved").items()
            if buyer == buyer_account_id
        ]
        mine.sort(key=lambda row: row[0].product_id)
        mine.sort(key=lambda row: row[0].saved_at, reverse=True)
        return _page(mine, page, page_size)

    def remove_from_list(self, buyer_account_id: str, product_id: str) -> bool:
        return self.table("saved").pop((buyer_account_id, product_id), None) is not None
