"""Product search on PostgreSQL and on SQLite: one set of filters, two text indexes.

The text part matches the buyer's words (``domain.TextQuery``) against each product's
normalised name, seller, summary and description:

- PostgreSQL: ``search_vector @@ websearch_to_tsquery('simple', …)`` over the GIN
  index, ranked by ``ts_rank`` (name weighs most, then seller, then the rest);
- SQLite: ``products_fts MATCH …`` on the FTS5 table, ranked by ``bm25`` with the
  same column order of importance.

Both see the same words (normalised once, in ``domain``) and both treat every word
of ``q`` as a quoted term, so they find the same products; only the order among
equally filtered products under ``relevance`` may differ, as the two ranking
functions score differently. Every other sort ends on ``id``, so pages are stable.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import domain
from catalog.models import Product, SpecificationPrice
from mercato.contracts.catalog import PRICE_ASC, PRICE_DESC, RELEVANCE

# bm25 weights of products_fts's columns: name, seller, body (as ts_rank's A, B, C)
BM25_WEIGHTS = (10.0, 4.0, 1.0)

_fts = sa.table("products_fts", sa.column("rowid"))
_fts_keys = sa.table("products_fts_keys", sa.column("fts_rowid"), sa.column("product_id"))


class _TextMatch(NamedTuple):
    where: Any  # a condition on products (PostgreSQL), or None
    join: tuple[Any, Any] | None  # (matches, on) to join products to (SQLite), or None
    rank: Any  # the ordering that puts the best match first


def _text_match(dialect: str, text: domain.TextQuery) -> _TextMatch:
    if dialect == "postgresql":
        vector = Product.__table__.c.search_vector
        # two arguments: SQLAlchemy casts the first to regconfig
        query = sa.func.websearch_to_tsquery("simple", text.websearch())
        return _TextMatch(vector.op("@@")(query), None, sa.func.ts_rank(vector, query).desc())
    if dialect == "sqlite":
        fts: sa.ColumnClause[Any] = sa.literal_column("products_fts")
        matches = (
            sa.select(_fts_keys.c.product_id, sa.func.bm25(fts, *BM25_WEIGHTS).label("rank"))
            .select_from(_fts.join(_fts_keys, _fts_keys.c.fts_rowid == _fts.c.rowid))
            .where(fts.op("MATCH")(text.fts5()))
            # run the MATCH once, first: inlined, SQLite would re-run it for every product
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        on = matches.c.product_id == Product.id
        return _TextMatch(None, (matches, on), matches.c.rank.asc())
    raise NotImplementedError(f"no product search on {dialect}")


def _filters(criteria: domain.SearchCriteria) -> list[Any]:
    conditions: list[Any] = [Product.status == domain.PUBLISHED]
    if criteria.delivery_method:
        conditions.append(Product.delivery_method == criteria.delivery_method)
    if criteria.category:
        conditions.append(Product.category == criteria.category)
    if criteria.seller_id:
        conditions.append(Product.seller_account_id == criteria.seller_id)
    if criteria.service_supervision is not None:
        conditions.append(Product.service_supervision.is_(criteria.service_supervision))
    if criteria.min_price is not None:
        conditions.append(Product.lowest_price >= criteria.min_price)
    if criteria.max_price is not None:
        conditions.append(Product.lowest_price <= criteria.max_price)
    if criteria.billing_mode:
        conditions.append(
            sa.exists().where(
                SpecificationPrice.product_id == Product.id,
                SpecificationPrice.billing_mode == criteria.billing_mode,
            )
        )
    return conditions


def _ordering(criteria: domain.SearchCriteria, rank: Any) -> list[Any]:
    newest = [Product.published_at.desc(), Product.id.asc()]
    if criteria.sort == PRICE_ASC:
        return [Product.lowest_price.asc(), *newest]
    if criteria.sort == PRICE_DESC:
        return [Product.lowest_price.desc(), *newest]
    if criteria.sort == RELEVANCE and rank is not None:
        return [rank, *newest]
    return newest


def search(session: Session, criteria: domain.SearchCriteria) -> tuple[list[Product], int]:
    """One page of published products matching ``criteria``, and how many match."""
    conditions = _filters(criteria)
    match = None
    if criteria.text is not None:
        match = _text_match(session.get_bind().dialect.name, criteria.text)
        if match.where is not None:
            conditions.append(match.where)

    def selecting(*columns: Any) -> sa.Select:
        statement = sa.select(*columns).select_from(Product)
        if match is not None and match.join is not None:
            statement = statement.join(*match.join)
        return statement.where(*conditions)

    total = session.scalar(selecting(sa.func.count(Product.id))) or 0
    products = list(
        session.scalars(
            selecting(Product)
            .order_by(*_ordering(criteria, match.rank if match else None))
            .limit(criteria.page_size)
            .offset(criteria.offset)
        )
    )
    return products, total


def billing_modes(session: Session, product_ids: list[str]) -> dict[str, list[str]]:
    """The billing modes each product offers, in ``domain.BILLING_MODES`` order."""
    offered: dict[str, set[str]] = defaultdict(set)
    if product_ids:
        rows = session.execute(
            sa.select(SpecificationPrice.product_id, SpecificationPrice.billing_mode)
            .where(SpecificationPrice.product_id.in_(product_ids))
            .distinct()
        )
        for product_id, mode in rows:
            offered[product_id].add(mode)
    return {
        product_id: [mode for mode in domain.BILLING_MODES if mode in offered[product_id]]
        for product_id in product_ids
    }
