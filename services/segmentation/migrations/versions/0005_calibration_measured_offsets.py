"""Calibrations record the snapshot their cut points were measured from.

A recalibration now measures every customer from a consistent snapshot without holding the engine lock
exclusively, and takes the exclusive lock only to record the calibration and re-grade everyone
(docs/segmentation.md, "Recalibration"). ``consumer_offsets`` stays the point the re-grade saw — what a
rebuild replays up to before it applies the calibration —; ``measured_offsets`` is the (earlier or
equal) point of the snapshot the cut points and breakpoints were computed from. NULL on calibrations
recorded before this revision, which measured under the lock (the same point as ``consumer_offsets``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from shared.db.core_schema import run_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        ALTER TABLE calibrations ADD COLUMN measured_offsets JSONB;
        COMMENT ON COLUMN calibrations.measured_offsets IS
            'consumer offsets of the snapshot the cut points were measured from (NULL: as consumer_offsets)';
        """
    )


def downgrade() -> None:
    run_script("ALTER TABLE calibrations DROP COLUMN measured_offsets;")
