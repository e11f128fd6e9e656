"""Run a service's Alembic history programmatically (the ``migrate`` role).

Each service keeps its own history in ``services/<name>/migrations``; its ``env.py`` is two lines that
call :func:`run_env`. The URL comes from the caller (settings), never from an ini file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.engine import ensure_database, to_asyncpg_url


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", to_asyncpg_url(database_url).replace("%", "%%"))
    return config


async def upgrade(script_location: Path, database_url: str, revision: str = "head") -> None:
    """Create the database if needed, then upgrade it to ``revision``."""
    await ensure_database(database_url)
    config = alembic_config(script_location, database_url)
    await asyncio.to_thread(command.upgrade, config, revision)


def run_env() -> None:
    """Body of every service's ``migrations/env.py`` (online mode only: we always have a database)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by shared.db.migrations.alembic_config"

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())
