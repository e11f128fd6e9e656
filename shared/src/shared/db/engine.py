"""Async SQLAlchemy engines (asyncpg), driver-level transactions for hot paths, database housekeeping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine on the asyncpg driver that survives a database restart.

    Instead of ``pool_pre_ping`` (three round trips per checkout with asyncpg: BEGIN, ping, ROLLBACK) a
    checkout listener discards connections the driver already knows are closed — what a database
    restart leaves behind, since the server closes every client socket when it stops. A connection that
    dies unnoticed fails its statement (a 503 for a command), and SQLAlchemy then invalidates the pool.
    """
    engine = create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 60},
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(_dbapi_connection: Any, _record: Any, proxy: Any) -> None:
    driver = proxy.driver_connection
    if driver is None or driver.is_closed():
        raise DisconnectionError("the connection was closed by the server")  # the pool reconnects


class ConnectionLost(ConnectionError):
    """The driver lost its connection mid-work (an ``OSError``: callers treat it as transient, e.g. 503)."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """One database transaction, seen two ways: ``driver`` (asyncpg: prepared statements, no SQL
    compilation, for hot paths) and ``conn`` (SQLAlchemy Core, for everything else). Both run in the
    same PostgreSQL transaction, which the driver controls; ``conn`` is in autocommit mode so that
    SQLAlchemy never issues BEGIN/COMMIT of its own (its ``begin_nested`` savepoints work as usual)."""

    conn: AsyncConnection
    driver: asyncpg.Connection


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """Check out one connection and run one transaction on it: commit on success, roll back on error.

    A connection left inside a transaction (e.g. cancelled mid-rollback) is invalidated, never returned
    to the pool; so is one whose driver lost its socket."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection  # type: ignore[assignment]
        try:
            async with driver.transaction():
                yield Transaction(conn, driver)
        except Exception as exc:
            if driver.is_closed():  # whatever was raised, the database went away: nothing committed
                raise ConnectionLost("the database connection was lost; the transaction did not commit") from exc
            raise
        finally:
            if driver.is_closed() or driver.is_in_transaction():
                await conn.invalidate()


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection as the bare driver, in autocommit mode (single-statement reads)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection  # type: ignore[assignment]
        try:
            yield driver
        except Exception as exc:
            if driver.is_closed():
                raise ConnectionLost("the database connection was lost") from exc
            raise
        finally:
            if driver.is_closed() or driver.is_in_transaction():
                await conn.invalidate()


async def driver_of(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy connection (e.g. a transaction hook's), same transaction."""
    return (await conn.get_raw_connection()).driver_connection  # type: ignore[return-value]


def to_asyncpg_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def to_libpq_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True when it was created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError(f"no database name in {parsed.render_as_string()}")
    admin = to_libpq_url(parsed.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()
