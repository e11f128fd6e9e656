"""HTTP serving for every process role: a socket bound up front (a port in use names its setting),
uvicorn on it without signal handlers of its own, and the worker roles' small listener.

The api role (and ``dev``) serves the API with ``/health/*`` and ``/metrics`` on ``<PREFIX>_HTTP_PORT``.
A process of worker roles only (relay, consume, sweep) serves just those three endpoints (the API's own
code, :func:`shared.api.operations_router`) on ``<PREFIX>_METRICS_PORT`` when it is set (0, the default,
= no listener): live while every role loop runs, ready when :class:`WorkerHealth`'s checks pass. A port
in use stops the process at start with a :class:`StartupError` naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from shared.api import ReadyCheck, operations_router
from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

#: Roles that serve no API; alone in a process, they get the small listener on ``<PREFIX>_METRICS_PORT``.
WORKER_ROLES = frozenset({"relay", "consume", "sweep"})
#: Readiness conditions the roles report (see :class:`WorkerHealth`).
RELAY_READY = "kafka_producer"
CONSUMER_READY = "group_joined"


class StartupError(RuntimeError):
    """The process cannot start as configured; the message names the setting to change."""


class WorkerHealth:
    """Liveness and readiness of a process's roles, as its worker listener reports them.

    Live while every role started in the process still runs (503 once one has returned or failed).
    Ready when live and every check passes: the database answers, plus what a role reports once it
    holds — the relay's Kafka producer has started, the consumer has joined its group (its first
    assignment is done; it may be empty: a standby replica beyond the partition count is ready). A condition
    is declared (``expect``) before the listener starts, so the set of checks never changes while a
    request reads it and readiness never passes before the role has reported."""

    def __init__(self) -> None:
        self.running: dict[str, bool] = {}
        self.checks: dict[str, ReadyCheck] = {"roles": self._roles_running}

    def alive(self) -> bool:
        return bool(self.running) and all(self.running.values())

    async def _roles_running(self) -> bool:
        return self.alive()

    def expect(self, name: str) -> None:
        self.checks.setdefault(name, _not_yet)

    def report(self, name: str, condition: Callable[[], bool]) -> None:
        async def check() -> bool:
            return condition()

        self.checks[name] = check


async def _not_yet() -> bool:
    return False


def listen(settings: ServiceSettings, host_field: str, port_field: str) -> socket.socket:
    """A socket bound to the address two settings name, so that an address in use stops the process
    at start naming the setting (uvicorn, left to bind, logs the OS error and exits without naming it)."""
    host, port = getattr(settings, host_field), getattr(settings, port_field)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        port_env, host_env = settings.env_name(port_field), settings.env_name(host_field)
        raise StartupError(
            f"{port_env}={port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            f"choose a free {port_env} (or another {host_env})"
        ) from exc
    return sock


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own: the process's ``stop`` event (SIGTERM, SIGINT, a
    failed role) ends every role, this server included, in one order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


#: How long a stopping server waits for open requests before it cancels them: below a container's 30 s
#: stop grace, with room for the other roles' shutdown and closing the database pool after it. A request
#: waits that long only on a hung dependency (a PostgreSQL that does not answer).
GRACEFUL_SHUTDOWN_S = 15


async def serve_http(
    app: FastAPI, sock: socket.socket, stop: asyncio.Event, *, graceful_shutdown_s: int = GRACEFUL_SHUTDOWN_S
) -> None:
    """Serve ``app`` on a bound socket until ``stop`` is set (then drain open requests, at most
    ``graceful_shutdown_s``)."""
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_shutdown_s,
        # C parser; the loop itself is uvloop, chosen by build_cli's runner (uvicorn's own
        # loop setting only applies when uvicorn creates the loop).
        http="httptools",
    )
    server = _Server(config)
    watcher = asyncio.create_task(_stop_server_on(stop, server))
    host, port = sock.getsockname()[:2]
    log.info("http.listening", host=host, port=port)
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
        sock.close()


def worker_app(service: str, health: WorkerHealth) -> FastAPI:
    """The worker roles' listener: ``/health/live``, ``/health/ready``, ``/metrics``; no API, no docs."""
    app = FastAPI(title=f"{service} worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(operations_router(service, health.checks, alive=health.alive))
    return app


def serves_worker_http(settings: ServiceSettings, roles: set[str]) -> bool:
    """Worker roles without the api (which serves these endpoints itself, also in ``dev``), port set."""
    return settings.metrics_port != 0 and "api" not in roles and bool(roles & WORKER_ROLES)


async def serve_worker_http(app: FastAPI, sock: socket.socket, until: asyncio.Event, stop: asyncio.Event) -> None:
    """The listener outlives the roles (``until`` is set once they ended); if it fails first, the
    process stops too: a worker that cannot be watched should not run on unseen."""
    try:
        await serve_http(app, sock, until)
    except Exception:
        log.exception("worker_http.failed")
        raise
    finally:
        stop.set()


async def _stop_server_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True
