"""consumer_offsets.last_record_fingerprint: the record before each stored offset, compared on
assignment so that a replaced log is noticed even when it is longer than the stored offset (core schema v3).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from shared.db import core_schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    core_schema.upgrade_v3()


def downgrade() -> None:
    core_schema.downgrade_v3()
