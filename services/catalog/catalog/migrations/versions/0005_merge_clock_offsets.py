"""Join the kernel's clock_offsets revision (messaging_0002) to this service's history.

Nothing to do: the kernel's revision creates the table; this one makes the two
branches one history again, so the service keeps one head.

Revision ID: 0005
Revises: 0004, messaging_0002
Create Date: 2026-12-03
"""

revision = "0005"
down_revision = ("0004", "messaging_0002")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
