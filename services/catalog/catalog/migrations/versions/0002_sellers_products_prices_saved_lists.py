"""sellers, products, specifications, prices, saved products and the search index

The search index is the one backend-specific part: on PostgreSQL a stored generated
tsvector column with a GIN index, on SQLite an FTS5 table kept in step by triggers
(see catalog.models). Each is created only on its own backend.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mercato.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# as catalog.models.SEARCH_VECTOR_SQL at this revision (frozen: a change is a new revision)
SEARCH_VECTOR_SQL = (
    "((setweight(to_tsvector('simple'::regconfig, search_name), 'A'::\"char\") || "
    "setweight(to_tsvector('simple'::regconfig, search_seller), 'B'::\"char\")) || "
    "setweight(to_tsvector('simple'::regconfig, search_body), 'C'::\"char\"))"
)

# SQLite: FTS5 wants integer row ids; products_fts_keys gives each product a stable one
# (a products rowid may change on VACUUM, an INTEGER PRIMARY KEY never does).
SQLITE_SEARCH_INDEX = (
    """
    CREATE TABLE products_fts_keys (
        fts_rowid INTEGER PRIMARY KEY,
        product_id VARCHAR(40) NOT NULL UNIQUE
    )
    """,
    """
    CREATE VIRTUAL TABLE products_fts USING fts5(
        name, seller, body, tokenize = 'unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER products_fts_after_insert AFTER INSERT ON products BEGIN
        INSERT INTO products_fts_keys (product_id) VALUES (new.id);
        INSERT INTO products_fts (rowid, name, seller, body) VALUES (
            (SELECT fts_rowid FROM products_fts_keys WHERE product_id = new.id),
            new.search_name, new.search_seller, new.search_body
        );
    END
    """,
    """
    CREATE TRIGGER products_fts_after_update
    AFTER UPDATE OF search_name, search_seller, search_body ON products BEGIN
        UPDATE products_fts
        SET name = new.search_name, seller = new.search_seller, body = new.search_body
        WHERE rowid = (SELECT fts_rowid FROM products_fts_keys WHERE product_id = new.id);
    END
    """,
    """
    CREATE TRIGGER products_fts_after_delete AFTER DELETE ON products BEGIN
        DELETE FROM products_fts
        WHERE rowid = (SELECT fts_rowid FROM products_fts_keys WHERE product_id = old.id);
        DELETE FROM products_fts_keys WHERE product_id = old.id;
    END
    """,
)


def _dialect() -> str:
    return op.get_bind().dialect.name


def upgrade() -> None:
    op.create_table(
        "sellers",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("company_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("support_range", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    search_vector = []
    if _dialect() == "postgresql":
        search_vector.append(
            sa.Column(
                "search_vector",
                postgresql.TSVECTOR(),
                sa.Computed(SEARCH_VECTOR_SQL, persisted=True),
                nullable=True,
            )
        )
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seller_account_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("delivery_method", sa.String(length=32), nullable=False),
        sa.Column("service_supervision", sa.Boolean(), nullable=False),
        sa.Column("product_guide_url", sa.String(length=2048), nullable=True),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lowest_price", sa.BigInteger(), nullable=False),
        sa.Column("delist_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("delisted_at", UTCDateTime(), nullable=True),
        sa.Column("search_name", sa.Text(), nullable=False),
        sa.Column("search_seller", sa.Text(), nullable=False),
        sa.Column("search_body", sa.Text(), nullable=False),
        *search_vector,
        sa.ForeignKeyConstraint(["seller_account_id"], ["sellers.account_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_products_seller_account_id_created_at",
        "products",
        ["seller_account_id", "created_at"],
    )
    op.create_index("ix_products_status_category", "products", ["status", "category"])
    op.create_index("ix_products_status_lowest_price", "products", ["status", "lowest_price"])
    op.create_index("ix_products_status_published_at", "products", ["status", "published_at"])
    if _dialect() == "postgresql":
        op.create_index(
            "ix_products_search_vector", "products", ["search_vector"], postgresql_using="gin"
        )
    elif _dialect() == "sqlite":
        for statement in SQLITE_SEARCH_INDEX:
            op.execute(statement)
    op.create_table(
        "saved_products",
        sa.Column("buyer_account_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.PrimaryKeyConstraint("buyer_account_id", "product_id"),
    )
    op.create_index(
        "ix_saved_products_buyer_account_id_saved_at",
        "saved_products",
        ["buyer_account_id", "saved_at"],
    )
    op.create_table(
        "specifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("quantity_name", sa.String(length=50), nullable=True),
        sa.Column("quantity_min", sa.Integer(), nullable=True),
        sa.Column("quantity_max", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("product_id", "position"),
    )
    op.create_index(
        op.f("ix_specifications_product_id"), "specifications", ["product_id"], unique=False
    )
    op.create_table(
        "prices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("specification_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("billing_mode", sa.String(length=16), nullable=False),
        sa.Column("period_unit", sa.String(length=8), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.ForeignKeyConstraint(["specification_id"], ["specifications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("specification_id", "billing_mode", "period_unit"),
    )
    op.create_index("ix_prices_product_id_billing_mode", "prices", ["product_id", "billing_mode"])
    op.create_index(op.f("ix_prices_specification_id"), "prices", ["specification_id"])


def downgrade() -> None:
    op.drop_table("prices")
    op.drop_table("specifications")
    op.drop_table("saved_products")
    if _dialect() == "sqlite":
        for name in ("after_delete", "after_update", "after_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS products_fts_{name}")
        op.execute("DROP TABLE IF EXISTS products_fts")
        op.execute("DROP TABLE IF EXISTS products_fts_keys")
    op.drop_table("products")
    op.drop_table("sellers")
