"""``mercato.db.insert_now`` on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from mercato.db import create_engine, insert_now

pytestmark = pytest.mark.interface


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    label: Mapped[str] = mapped_column("label_text", sa.String(40))  # attribute ≠ column
    kind: Mapped[str] = mapped_column(sa.String(16), default="plain")
    parent_id: Mapped[str | None] = mapped_column(sa.String(8), sa.ForeignKey("parents.id"))
    parent: Mapped[Parent | None] = relationship()


class Parent(Base):
    __tablename__ = "parents"

    id: Mapped[str] = mapped_column(sa.String(8), primary_key=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request, databases, tmp_path):
    url = (
        databases.empty("insert_now")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path}/t.db"
    )
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


def test_rows_are_written_with_their_generated_keys_and_column_defaults(session):
    first, second = Entry(label="a"), Entry(label="b", kind="special")
    insert_now(session, first, second)
    session.commit()
    assert first.id is not None and second.id == first.id + 1
    stored = session.execute(sa.select(Entry.id, Entry.label, Entry.kind).order_by(Entry.id)).all()
    assert [tuple(row) for row in stored] == [(first.id, "a", "plain"), (second.id, "b", "special")]
    assert first not in session  # written, not tracked: a later read loads the row afresh


def test_a_row_may_refer_to_an_object_still_pending_in_the_session(session):
    session.add(Parent(id="p1"))  # not flushed yet: the foreign key needs it first
    entry = Entry(label="child", parent_id="p1")
    insert_now(session, entry)
    session.commit()
    assert session.scalar(sa.select(Entry.parent_id).where(Entry.id == entry.id)) == "p1"


def test_nothing_is_written_when_the_transaction_rolls_back(session):
    insert_now(session, Entry(label="gone"))
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 0
