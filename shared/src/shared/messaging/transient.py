"""Which failures mean "the database cannot serve right now, try again" rather than "this is wrong".

The consumer retries the first kind forever (nothing is skipped) and dead-letters after a bounded
number of attempts otherwise; the sweeps and the HTTP middleware draw the same line. It lives apart
from the consumer so that the consumer's position bookkeeping (``positions``) can use it too.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

#: SQLSTATEs meaning "the server cannot serve right now", not "the statement is wrong": class 08
#: (connection exception), admin / crash shutdown, cannot connect now (e.g. "the database system is
#: shutting down", raised at connect time as a plain DBAPIError), too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` means the database (or the network to it) is unavailable: retry later.

    That includes the pool's checkout timeout (SQLAlchemy's own ``TimeoutError``, not the built-in one):
    with the server hung, every pooled connection waits on it and the next callers find none free."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    return state is not None and (state.startswith("08") or state in _UNAVAILABLE_SQLSTATES)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind ``exc`` (asyncpg's, wrapped by SQLAlchemy), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None
