"""webhook endpoints and the relay's cursors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:00:00

One endpoint per org (url, signing secret, active/paused with the reason and time, the
count of consecutive failed deliveries, the lease of the relay delivering it), and one
cursor per (endpoint, identity): the last seq delivered or dropped, so a restarted relay
resumes where the last one stopped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paused_reason", sa.String(length=16), nullable=True),
        sa.Column("paused_at", sa.BigInteger(), nullable=True),
        sa.Column("failed_deliveries", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id"),
    )
    op.create_table(
        "webhook_cursors",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("identity_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"]),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"]),
        sa.PrimaryKeyConstraint("endpoint_id", "identity_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("webhook_cursors")
    op.drop_table("webhook_endpoints")
