"""The catalog's tables: sellers, products, their specifications and prices, and the
buyers' saved lists.

Full-text search keeps each product's searchable text, normalised once in Python
(``domain.normalise_text``), in three ``search_*`` columns. The index over them is
backend-specific and exists only where its migration created it:

- PostgreSQL: ``products.search_vector``, a stored generated ``tsvector`` (name
  weighted A, seller B, summary and description C) with a GIN index. It is in the
  table below so that the migrations can be compared with the models, but it is not
  mapped: the ORM never reads or writes it, so the same model runs on SQLite.
- SQLite: an FTS5 table ``products_fts`` (and ``products_fts_keys``, its integer
  row ids) kept in step with ``products`` by triggers; not in this metadata.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import mercato.contracts.catalog  # noqa: F401  (registers the catalog's events)
from catalog import domain
from mercato.request_keys import add_request_keys_table
from mercato.tables import UTCDateTime, add_messaging_tables


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)
add_request_keys_table(metadata)

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

# Written as PostgreSQL prints it back, so that comparing models and database agrees.
SEARCH_VECTOR_SQL = (
    "((setweight(to_tsvector('simple'::regconfig, search_name), 'A'::\"char\") || "
    "setweight(to_tsvector('simple'::regconfig, search_seller), 'B'::\"char\")) || "
    "setweight(to_tsvector('simple'::regconfig, search_body), 'C'::\"char\"))"
)


class Seller(Base):
    """A seller's public profile, keyed by its account id (iam-agency's)."""

    __tablename__ = "sellers"

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    mobile: Mapped[str | None] = mapped_column(sa.String(32))
    support_range: Mapped[str | None] = mapped_column(sa.String(200))
    # the currency of the seller's new products' prices
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Product(Base, domain.ProductLifecycle):
    """A seller's product; its moves and their events are ``domain.ProductLifecycle``'s."""

    __tablename__ = "products"
    __table_args__ = (
        sa.Index("ix_products_seller_account_id_created_at", "seller_account_id", "created_at"),
        sa.Index("ix_products_status_published_at", "status", "published_at"),
        sa.Index("ix_products_status_lowest_price", "status", "lowest_price"),
        sa.Index("ix_products_status_category", "status", "category"),
        sa.Index("ix_products_search_vector", "search_vector", postgresql_using="gin"),
    )
    __mapper_args__ = {"exclude_properties": ["search_vector"]}

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    seller_account_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("sellers.account_id")
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.String(500))
    description: Mapped[str] = mapped_column(sa.Text())
    category: Mapped[str] = mapped_column(sa.String(64))
    delivery_method: Mapped[str] = mapped_column(sa.String(32))
    service_supervision: Mapped[bool] = mapped_column(sa.Boolean())
    product_guide_url: Mapped[str | None] = mapped_column(sa.String(2048))
    # saas only: the seller's endpoint Mercato calls to deliver (seller_interface);
    # the seller's and provisioning's to read, never in what buyers or events see
    saas_endpoint_url: Mapped[str | None] = mapped_column(sa.String(2048))
    # what a buyer writes in a service request for this product (supervision shows it);
    # set by its seller, None until then
    request_template: Mapped[str | None] = mapped_column(sa.Text())
    terms: Mapped[str] = mapped_column(sa.Text())
    status: Mapped[str] = mapped_column(sa.String(16))
    # every price of the product is in this currency (the seller's when it was created)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # the lowest amount of any of its prices, in minor units: search filters and sorts on it
    lowest_price: Mapped[int] = mapped_column(sa.BigInteger())
    delist_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    delisted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # normalised searchable text (domain.normalise_text); the index reads these
    # (deferred: the index reads them, Python never needs them back)
    search_name: Mapped[str] = mapped_column(sa.Text(), deferred=True)
    search_seller: Mapped[str] = mapped_column(sa.Text(), deferred=True)
    search_body: Mapped[str] = mapped_column(sa.Text(), deferred=True)
    # PostgreSQL only, not mapped (see the module docstring)
    search_vector = sa.Column(
        "search_vector", TSVECTOR(), sa.Computed(SEARCH_VECTOR_SQL, persisted=True)
    )

    seller: Mapped[Seller] = relationship(lazy="joined", innerjoin=True)
    specifications: Mapped[list[Specification]] = relationship(
        order_by="Specification.position", cascade="all, delete-orphan"
    )


class Specification(Base):
    """One configuration of a product a buyer can choose, with its prices."""

    __tablename__ = "specifications"
    __table_args__ = (sa.UniqueConstraint("product_id", "position"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("products.id"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer())
    name: Mapped[str] = mapped_column(sa.String(100))
    # the optional quantity dimension: "users" from 1 to 1000
    quantity_name: Mapped[str | None] = mapped_column(sa.String(50))
    quantity_min: Mapped[int | None] = mapped_column(sa.Integer())
    quantity_max: Mapped[int | None] = mapped_column(sa.Integer())
    # an image product's: what it deploys and what the cloud resources cost (JSON as
    # the contract's ImageSchema and CloudPriceSchema; read and written whole)
    image: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    cloud_prices: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON())

    prices: Mapped[list[SpecificationPrice]] = relationship(
        order_by="SpecificationPrice.id", cascade="all, delete-orphan"
    )

    def to_domain(self) -> domain.Specification:
        """The specification as the pricing rules read it."""
        quantity = None
        if self.quantity_name is not None:
            assert self.quantity_min is not None and self.quantity_max is not None
            quantity = domain.Quantity(self.quantity_name, self.quantity_min, self.quantity_max)
        return domain.Specification(
            id=self.id,
            name=self.name,
            prices=tuple(
                domain.Price(price.billing_mode, price.period_unit, price.amount)
                for price in self.prices
            ),
            quantity=quantity,
            image=self.image,
            cloud_prices=tuple(domain.CloudPrice.from_dict(p) for p in self.cloud_prices or ()),
        )


class SpecificationPrice(Base):
    """The price of one specification under one billing mode and period unit, in
    minor units of the product's currency."""

    __tablename__ = "prices"
    __table_args__ = (
        sa.UniqueConstraint("specification_id", "billing_mode", "period_unit"),
        sa.Index("ix_prices_product_id_billing_mode", "product_id", "billing_mode"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    specification_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("specifications.id"), index=True
    )
    # the specification's product, so search can filter on billing mode in one lookup
    product_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("products.id"))
    billing_mode: Mapped[str] = mapped_column(sa.String(16))
    period_unit: Mapped[str | None] = mapped_column(sa.String(8))
    amount: Mapped[int] = mapped_column(sa.BigInteger())


class SavedProduct(Base):
    """A product in a buyer's "My Saved List"."""

    __tablename__ = "saved_products"
    __table_args__ = (
        sa.Index("ix_saved_products_buyer_account_id_saved_at", "buyer_account_id", "saved_at"),
    )

    buyer_account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("products.id"), primary_key=True
    )
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    product: Mapped[Product] = relationship()
