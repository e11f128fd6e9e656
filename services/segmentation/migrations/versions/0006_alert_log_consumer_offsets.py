"""Operator actions on churn alerts record the point of the input streams they were taken at.

``alert_log.consumer_offsets`` holds, for an operator's acknowledge / snooze / close, the consumer's
stored offsets read in the command's transaction after the customer's row was locked: exactly the
customer's events its alert had been graded from. ``rebuild`` replays the topics up to that point and
applies the action there, as it does with recalibrations (docs/segmentation.md, "Rebuild"). NULL for the
engine's own entries (raised, occurrence, cleared, …), which a replay produces by itself, and for
operator actions recorded before this revision, which a rebuild cannot place and leaves out of its
comparison (counted).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from shared.db.core_schema import run_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        ALTER TABLE alert_log ADD COLUMN consumer_offsets JSONB;
        COMMENT ON COLUMN alert_log.consumer_offsets IS
            'operator actions: consumer offsets when the action was taken (what a rebuild replays up to first)';
        """
    )


def downgrade() -> None:
    run_script("ALTER TABLE alert_log DROP COLUMN consumer_offsets;")
