"""Async SQLAlchemy engines (asyncpg), driver-level transactions for hot paths, database housekeeping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn


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


class Transaction:
    """One database connection for a command, seen two ways: ``driver`` (asyncpg: prepared statements, no
    SQL compilation, for hot paths) and ``conn`` (SQLAlchemy Core, for everything else), on the same
    PostgreSQL session. ``conn`` is in autocommit mode so that SQLAlchemy never issues BEGIN/COMMIT of its
    own (its ``begin_nested`` savepoints work as usual); the driver controls transactions.

    From :func:`transaction` it is inside one transaction; from :func:`connection` it is not (each
    statement commits on its own — a command whose writes are one statement needs no BEGIN/COMMIT).

    The pooled connection is checked out bare; the SQLAlchemy view is opened on it only when asked for
    (:meth:`sqlalchemy`): a command that only talks to the driver — every hot path — saves two thirds of
    the checkout's CPU (~35 µs: SQLAlchemy's ``Connection``, its isolation level set and reset, two
    greenlet hops). :func:`transaction` opens it up front, so ``conn`` is always there in one."""

    __slots__ = ("_after_commit", "_conn", "_engine", "_pooled", "driver")

    def __init__(self, engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
        self.driver: asyncpg.Connection = pooled.driver_connection  # type: ignore[assignment]
        self._engine = engine
        self._pooled = pooled
        self._conn: AsyncConnection | None = None
        self._after_commit: list[Callable[[], None]] = []

    @property
    def conn(self) -> AsyncConnection:
        """The SQLAlchemy view of this connection (always open inside :func:`transaction`; elsewhere
        open it with ``await tx.sqlalchemy()`` first)."""
        if self._conn is None:
            raise RuntimeError("the SQLAlchemy view of this connection is not open; await tx.sqlalchemy() first")
        return self._conn

    async def sqlalchemy(self) -> AsyncConnection:
        """The SQLAlchemy view of this connection (same session), opened at the first call."""
        if self._conn is None:
            view = AsyncConnection(self._engine, Connection(self._engine.sync_engine, connection=self._pooled))
            self._conn = await view.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

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

    @property
    def broken(self) -> bool:
        """The driver lost its socket, or was left inside a transaction: not to be handed out again."""
        return self.driver.is_closed() or self.driver.is_in_transaction()

    async def _release(self) -> None:
        """Back to the pool; invalidated instead when broken."""
        broken = self.broken
        conn, self._conn = self._conn, None
        if conn is not None:  # SQLAlchemy resets the isolation level as the connection goes back
            if broken:
                await conn.invalidate()
            await conn.close()
        else:
            await greenlet_spawn(self._pooled.invalidate if broken else self._pooled.close)


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """Check out one connection and run one transaction on it: commit on success, roll back on error.

    A connection left inside a transaction (e.g. cancelled mid-rollback) is invalidated, never returned
    to the pool; so is one whose driver lost its socket."""
    async with connection(engine) as tx:
        await tx.sqlalchemy()
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
    :func:`shared_connection`, the shared one.

    A connection that broke (the driver lost its socket, or it was left inside a transaction) is never
    handed out again: it goes back to the pool invalidated, and a shared one is replaced at its next use."""
    shared = _borrowable(engine)
    if shared is None:
        tx = await _checkout(engine)
    else:
        shared.busy = True
        try:
            if shared.tx is None:
                shared.tx = await _checkout(engine)
        except BaseException:
            shared.busy = False
            raise
        tx = shared.tx
    try:
        yield tx
    except Exception as exc:
        if tx.driver.is_closed():  # whatever was raised, the database went away: nothing committed
            raise ConnectionLost("the database connection was lost; the transaction did not commit") from exc
        raise
    finally:
        if shared is None:
            await tx._release()
        else:
            shared.busy = False
            if tx.broken and shared.tx is tx:  # not if the shared block has handed it back already
                shared.tx = None
                await tx._release()


async def _checkout(engine: AsyncEngine) -> Transaction:
    """A pooled connection, bare. A driver error while connecting is raised as ``engine.connect()`` raises
    it — SQLAlchemy's ``DBAPIError`` family, marked ``connection_invalidated`` on a disconnect — so that
    callers (e.g. the 503 mapping, :func:`shared.messaging.consumer.is_transient`) see the same errors."""
    dialect = engine.dialect
    try:
        return Transaction(engine, await engine.raw_connection())
    except dialect.loaded_dbapi.Error as exc:
        invalidated = dialect.is_disconnect(exc, None, None)
        raise DBAPIError.instance(
            None, None, exc, dialect.loaded_dbapi.Error, connection_invalidated=invalidated, dialect=dialect
        ) from exc


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection as the bare driver, in autocommit mode (single statements); inside
    :func:`shared_connection`, the shared one."""
    async with connection(engine) as tx:
        yield tx.driver


# -- one connection for a whole request -----------------------------------------------------------------
@dataclass(slots=True)
class _Shared:
    engine: AsyncEngine
    tx: Transaction | None = None
    busy: bool = False
    ended: bool = False


_shared: ContextVar[_Shared | None] = ContextVar("tierstream_shared_connection", default=None)


@contextlib.asynccontextmanager
async def shared_connection(engine: AsyncEngine) -> AsyncIterator[None]:
    """Within the block, :func:`connection`, :func:`transaction` and :func:`driver_connection` on
    ``engine`` use ONE pooled connection, checked out at first use and returned at the end.

    A keyed command (look the key up, run the command, store the answer) so checks out once instead of
    three times (~20 µs of CPU each: SQLAlchemy's pool and two greenlet hops). A use while another one is
    in progress — nested, or in a concurrent task — checks out its own connection as before, so sharing
    never puts two statements on one connection at once; so does any use after the block (a task that
    copied the context). A shared connection that broke is given back invalidated at once, and the next
    use checks out a fresh one."""
    shared = _Shared(engine)
    token = _shared.set(shared)
    try:
        yield
    finally:
        _shared.reset(token)
        tx, shared.tx, shared.ended = shared.tx, None, True
        if tx is not None:
            await tx._release()


def _borrowable(engine: AsyncEngine) -> _Shared | None:
    shared = _shared.get()
    if shared is None or shared.engine is not engine or shared.busy or shared.ended:
        return None
    return shared


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
