"""pending sends keep the id of the request that queued them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00

A nullable request_id on pending_sends: the dispatcher that delivers a queued send logs
the id of the request that queued it, so one id follows a send from the caller into the
delivery's logs. Rows queued before this revision have none (logged as "-").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("pending_sends", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("pending_sends", schema=None) as batch_op:
        batch_op.drop_column("request_id")
