"""Per-token limits: audio-seconds per day and generations (jobs and streams) per minute on ``api_tokens`` (NULL:
the server's defaults), and the ``usage`` ledger they are counted from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("quota_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("rate_per_minute", sa.Integer(), nullable=True))
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(op.f("ix_usage_owner"), "usage", ["owner"])
    op.create_index(op.f("ix_usage_at"), "usage", ["at"])


def downgrade() -> None:
    op.drop_table("usage")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("rate_per_minute")
        batch.drop_column("quota_seconds")
