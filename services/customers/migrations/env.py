"""Alembic environment: the shared runner (URL from the service's settings, online mode)."""

from shared.db.migrations import run_env

run_env()
