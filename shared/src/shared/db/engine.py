"""Async SQLAlchemy engines (asyncpg), driver-level transactions for hot paths, database housekeeping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
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
    """One database connection for a command, seen two ways: ``driver`` (asyncpg: prepared statements, no
    SQL compilation, for hot paths) and ``conn`` (SQLAlchemy Core, for everything else), on the same
    PostgreSQL session. ``conn`` is in autocommit mode so that SQLAlchemy never issues BEGIN/COMMIT of its
    own (its ``begin_nested`` savepoints work as usual); the driver controls transactions.

    From :func:`transaction` it is inside one transaction; from :func:`connection` it is not (each
    statement commits on its own — a command whose writes are one statement needs no BEGIN/COMMIT)."""

    conn: AsyncConnection
    driver: asyncpg.Connection
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once what was written so far is committed: now, outside a transaction."""
        if self.driver.is_in_transaction():
            self._after_commit.append(callback)
        else:
            callback()

    def _committed(self) -> None:
        callbacks = list(self._after_commit)
        self._after_commit.clear()
        for callback in callbacks:
            callback()


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """Check out one connection and run one transaction on it: commit on success, roll back on error.

    A connection left inside a transaction (e.g. cancelled mid-rollback) is invalidated, never returned
    to the pool; so is one whose driver lost its socket."""
    async with connection(engine) as tx:
        try:
            async with tx.driver.transaction():
                yield tx
        except BaseException:
            tx._after_commit.clear()  # rolled back: nothing to announce (the connection may be reused)
            raise
    tx._committed()


@contextlib.asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """Check out one connection for a command, in autocommit mode (see :class:`Transaction`); inside
    :func:`shared_connection`, the shared one."""
    shared = _borrowable(engine)
    if shared is not None:
        async with _borrow(shared) as tx:
            yield tx
        return
    async with _checkout(engine) as tx:
        yield tx


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection as the bare driver, in autocommit mode (single statements); inside
    :func:`shared_connection`, the shared one.

    SQLAlchemy is not told (no ``execution_options``: ~20 µs a checkout): it begins a transaction only
    when a statement goes through it, which none does here, and its reset on return is then a no-op."""
    shared = _borrowable(engine)
    if shared is not None:
        async with _borrow(shared) as tx:
            yield tx.driver
        return
    async with engine.connect() as conn:
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


@contextlib.asynccontextmanager
async def _checkout(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection  # type: ignore[assignment]
        tx = Transaction(conn, driver)
        try:
            yield tx
        except Exception as exc:
            if driver.is_closed():  # whatever was raised, the database went away: nothing committed
                raise ConnectionLost("the database connection was lost; the transaction did not commit") from exc
            raise
        finally:
            if driver.is_closed() or driver.is_in_transaction():
                await conn.invalidate()


# -- one connection for a whole request -----------------------------------------------------------------
@dataclass(slots=True)
class _Shared:
    engine: AsyncEngine
    stack: contextlib.AsyncExitStack | None = None
    tx: Transaction | None = None
    busy: bool = False


_shared: ContextVar[_Shared | None] = ContextVar("tierstream_shared_connection", default=None)


@contextlib.asynccontextmanager
async def shared_connection(engine: AsyncEngine) -> AsyncIterator[None]:
    """Within the block, :func:`connection`, :func:`transaction` and :func:`driver_connection` on
    ``engine`` use ONE pooled connection, checked out at first use and returned at the end.

    A keyed command (look the key up, run the command, store the answer) so checks out once instead of
    three times (~60 µs of CPU each, SQLAlchemy's pool and greenlets). A use while another one is in
    progress — nested, or in a concurrent task — checks out its own connection as before, so sharing
    never puts two statements on one connection at once. A shared connection that broke (closed, or left
    inside a transaction) is given back invalidated at once, and the next use checks out a fresh one."""
    shared = _Shared(engine)
    token = _shared.set(shared)
    try:
        yield
    finally:
        _shared.reset(token)
        stack, shared.stack, shared.tx, shared.busy = shared.stack, None, None, True
        # returned to the pool (even if returning it fails): a task that copied the context checks out
        # its own from now on
        if stack is not None:
            await stack.aclose()


def _borrowable(engine: AsyncEngine) -> _Shared | None:
    shared = _shared.get()
    return shared if shared is not None and shared.engine is engine and not shared.busy else None


@contextlib.asynccontextmanager
async def _borrow(shared: _Shared) -> AsyncIterator[Transaction]:
    shared.busy = True
    try:
        if shared.tx is None:
            stack = contextlib.AsyncExitStack()
            shared.tx = await stack.enter_async_context(_checkout(shared.engine))
            shared.stack = stack
        tx = shared.tx
        try:
            yield tx
        except Exception as exc:
            if tx.driver.is_closed():
                raise ConnectionLost("the database connection was lost; the transaction did not commit") from exc
            raise
    finally:
        shared.busy = False
        tx_ = shared.tx
        if tx_ is not None and (tx_.driver.is_closed() or tx_.driver.is_in_transaction()):
            stack_, shared.stack, shared.tx = shared.stack, None, None
            if stack_ is not None:
                await stack_.aclose()  # _checkout invalidates it


async def driver_of(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy connection (e.g. a transaction hook's), same session.

    Read synchronously while the connection is open and valid (no greenlet hop: a third of a small
    insert's CPU); otherwise through ``get_raw_connection``, which may reconnect."""
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection.driver_connection  # type: ignore[return-value]
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
