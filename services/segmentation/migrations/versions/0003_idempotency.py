"""idempotency_keys: stored answers of commands sent with an Idempotency-Key (core schema v2).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from shared.db import core_schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    core_schema.upgrade_v2()


def downgrade() -> None:
    core_schema.downgrade_v2()
