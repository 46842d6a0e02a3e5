"""queued sends are found by their message

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:30:00

GetConversation reports each outbound message's send (its pending id and where it
stands), joining pending_sends on message_id: an index keeps that a lookup per message
instead of a scan of every queued send.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_pending_message", "pending_sends", ["message_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_pending_message", table_name="pending_sends")
