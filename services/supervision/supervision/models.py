"""The supervision service's tables. Its business tables arrive with its own issue; today it
owns the messaging tables every service has."""

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

from mercato.tables import add_messaging_tables


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)
