"""org names are unique regardless of case

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00

A unique index on lower(name): `admin org create Acme` after `acme` is refused, and
`--org ACME` finds `acme`. The name keeps the case it was created with. Databases that
already hold names differing only in case are refused with the names and ids, for the
operator to rename one: merging two orgs' keys and identities is not a guess to make here.
SQLite's lower() folds ASCII letters only; PostgreSQL's folds every letter.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mailpool_server.startup import SchemaRefused

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT name, id FROM orgs WHERE lower(name) IN "
                "(SELECT lower(name) FROM orgs GROUP BY lower(name) HAVING count(*) > 1) "
                "ORDER BY lower(name), name"
            )
        )
        .all()
    )
    if clashes:
        names = ", ".join(f"{name!r} ({org_id})" for name, org_id in clashes)
        raise SchemaRefused(
            f"org names are now unique regardless of case, and these differ only in case: "
            f"{names}; rename all but one (UPDATE orgs SET name = '…' WHERE id = '…') "
            "with the previous version, then start again"
        )
    op.create_index("ux_orgs_name_lower", "orgs", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ux_orgs_name_lower", table_name="orgs")
