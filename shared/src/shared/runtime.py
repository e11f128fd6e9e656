"""Process roles of every service: ``python -m <service> api | relay | consume | sweep | migrate | dev``.

A service describes itself once (:class:`ServiceDefinition`); this module turns that description into
a command line whose roles can run as separate processes (scale-out) or all in one (``dev``).

HTTP (the API, the worker roles' health and metrics listener) is :mod:`shared.serving`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import typer
import uvloop
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.api import database_check
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.logging import configure_logging, get_logger
from shared.messaging.consumer import Projection, ProjectionConsumer
from shared.messaging.kafka import ensure_topics, make_producer
from shared.messaging.reachability import KAFKA_ROLES, KafkaReachability
from shared.messaging.relay import OutboxRelay
from shared.serving import (
    CONSUMER_READY,
    RELAY_READY,
    StartupError,
    WorkerHealth,
    listen,
    serve_http,
    serve_worker_http,
    serves_worker_http,
    worker_app,
)
from shared.settings import ServiceSettings

log = get_logger(__name__)

S = TypeVar("S", bound=ServiceSettings)


@dataclass
class Container(Generic[S]):
    """What a process of one service holds: settings, its engine, topic names, and service parts."""

    settings: S
    engine: AsyncEngine
    topics: Topics
    parts: dict[str, Any] = field(default_factory=dict)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Close the pool's connections; a server that does not answer (hung) is left after ``timeout_s``
        (the process is ending: the operating system closes the sockets)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.engine.dispose()
        except TimeoutError:
            log.warning("database.close_abandoned", waited_s=timeout_s)


@dataclass
class ConsumerSpec:
    group_id: str
    #: contract topic names (namespaced at run time)
    topics: list[str]
    build_projection: Callable[[Container[Any]], Projection]


@dataclass
class ServiceDefinition(Generic[S]):
    name: str
    settings_cls: type[S]
    migrations: Path
    build_api: Callable[[Container[S]], FastAPI]
    bootstrap: Callable[[Container[S]], None] = lambda _c: None
    consumer: ConsumerSpec | None = None
    background: list[Callable[[Container[S], asyncio.Event], Awaitable[None]]] = field(default_factory=list)

    def container(self, settings: S | None = None) -> Container[S]:
        settings = settings or self.settings_cls()
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        container = Container(settings=settings, engine=engine, topics=Topics(settings.topic_namespace))
        self.bootstrap(container)
        return container


# -- roles ----------------------------------------------------------------------------------------
async def migrate(definition: ServiceDefinition[Any], settings: ServiceSettings) -> None:
    # Imported here: Alembic (~7 MiB) is needed by this role only, not by every long-running process.
    from shared.db.migrations import upgrade

    await upgrade(definition.migrations, settings.database_url)
    created = await ensure_topics(
        settings.kafka_bootstrap_servers,
        Topics(settings.topic_namespace).all(),
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )
    log.info("migrate.done", service=definition.name, topics_created=created)


async def serve_api(
    container: Container[Any], app: FastAPI, stop: asyncio.Event, sock: socket.socket | None = None
) -> None:
    try:
        await serve_http(app, sock or listen(container.settings, "http_host", "http_port"), stop)
    finally:
        stop.set()


async def run_relay(
    container: Container[Any], service: str, stop: asyncio.Event, health: WorkerHealth | None = None
) -> None:
    settings = container.settings

    def new_producer() -> AIOKafkaProducer:
        return make_producer(settings.kafka_bootstrap_servers, client_id=f"{service}-relay")

    producer = new_producer()
    await _start_with_retry(producer.start, stop, what="kafka producer")
    if health is not None:
        health.report(RELAY_READY, lambda: True)
    relay = OutboxRelay(
        container.engine,
        producer,
        service=service,
        new_producer=new_producer,
        batch_size=settings.relay_batch_size,
        idle_interval_s=settings.relay_idle_interval_s,
        retention=timedelta(hours=settings.outbox_retention_hours),
    )
    try:
        await relay.run(stop)
    finally:
        await relay.close()  # the producer in use: the relay replaces one whose sends failed


async def run_consumer(
    container: Container[Any], spec: ConsumerSpec, stop: asyncio.Event, health: WorkerHealth | None = None
) -> None:
    settings = container.settings
    topics = container.topics
    consumer = ProjectionConsumer(
        container.engine,
        spec.build_projection(container),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_namespace}{spec.group_id}",
        topics=[topics.name(t) for t in spec.topics],
        deadletter_topic=topics.deadletter,
        batch_size=settings.consumer_batch_size,
        session_timeout_ms=settings.consumer_session_timeout_ms,
    )
    if health is not None:
        health.report(CONSUMER_READY, lambda: consumer.joined)
    await consumer.run(stop)


async def _start_with_retry(start: Callable[[], Awaitable[None]], stop: asyncio.Event, *, what: str) -> None:
    delay = 0.5
    while True:
        try:
            await start()
            return
        except Exception as exc:
            if stop.is_set():
                raise
            log.warning("startup.retry", what=what, error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def _run_roles(definition: ServiceDefinition[Any], roles: set[str]) -> None:
    settings = definition.settings_cls()
    configure_logging(definition.name, settings.log_level, settings.log_format)
    if "migrate" in roles:
        await migrate(definition, settings)
        roles = roles - {"migrate"}
        if not roles:
            return
    # Bound before anything starts: a port in use fails the start, naming its setting.
    api_socket = listen(settings, "http_host", "http_port") if "api" in roles else None
    worker_socket = listen(settings, "metrics_host", "metrics_port") if serves_worker_http(settings, roles) else None
    container = definition.container(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health = WorkerHealth()
    jobs = _role_jobs(definition, container, roles, stop, health, api_socket)
    health.running = dict.fromkeys(jobs, True)
    listener, listener_stop = None, asyncio.Event()
    if worker_socket is not None:
        app = worker_app(definition.name, health)
        listener = asyncio.create_task(serve_worker_http(app, worker_socket, listener_stop, stop))
    # Logs kafka.unreachable / kafka.reachable_again (aiokafka's own retries say neither).
    kafka_watcher = (
        asyncio.create_task(KafkaReachability(settings.kafka_bootstrap_servers).watch(stop))
        if roles & KAFKA_ROLES
        else None
    )
    log.info("service.starting", service=definition.name, roles=sorted(roles))
    try:
        results = await asyncio.gather(
            *(_until_stop(name, job, stop, health) for name, job in jobs.items()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
    finally:
        try:
            if listener is not None:
                listener_stop.set()
                await listener
        finally:
            if kafka_watcher is not None:
                kafka_watcher.cancel()  # it may be in the middle of a probe
            await container.close()
            log.info("service.stopped", service=definition.name)


def _role_jobs(
    definition: ServiceDefinition[Any],
    container: Container[Any],
    roles: set[str],
    stop: asyncio.Event,
    health: WorkerHealth,
    api_socket: socket.socket | None,
) -> dict[str, Awaitable[None]]:
    """Each role's coroutine by name; the conditions they will report are declared to ``health`` now."""
    jobs: dict[str, Awaitable[None]] = {}
    health.checks["database"] = database_check(container.engine)
    if "api" in roles:
        jobs["api"] = serve_api(container, definition.build_api(container), stop, api_socket)
    if "relay" in roles:
        health.expect(RELAY_READY)
        jobs["relay"] = run_relay(container, definition.name, stop, health)
    if "consume" in roles:
        if definition.consumer is None:
            raise typer.BadParameter(f"{definition.name} has no consumer role")
        health.expect(CONSUMER_READY)
        jobs["consume"] = run_consumer(container, definition.consumer, stop, health)
    if "sweep" in roles:
        for number, job in enumerate(definition.background, 1):
            jobs[f"sweep:{number}:{getattr(job, '__name__', 'job')}"] = job(container, stop)
    return jobs


async def _until_stop(role: str, task: Awaitable[None], stop: asyncio.Event, health: WorkerHealth) -> None:
    """Run one role; if it fails, stop the others too (a process is healthy as a whole or exits)."""
    try:
        await task
    except Exception:
        log.exception("role.failed", role=role)
        stop.set()
        raise
    finally:
        health.running[role] = False


def build_cli(definition: ServiceDefinition[Any]) -> typer.Typer:
    app = typer.Typer(help=f"Tierstream {definition.name} service", no_args_is_help=True, add_completion=False)

    def run(roles: set[str]) -> None:
        try:
            with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_run_roles(definition, roles))
        except StartupError as exc:
            log.error("service.start_failed", service=definition.name, error=str(exc))
            raise typer.Exit(1) from None

    @app.command()
    def api() -> None:
        """Serve the HTTP API."""
        run({"api"})

    @app.command()
    def relay() -> None:
        """Publish the outbox to Kafka (one active instance per service; others stand by)."""
        run({"relay"})

    @app.command()
    def migrate() -> None:
        """Create the database if needed, apply migrations, create the contract topics."""
        run({"migrate"})

    if definition.consumer is not None:

        @app.command()
        def consume() -> None:
            """Consume events into this service's projections (scale out by partitions)."""
            run({"consume"})

    if definition.background:

        @app.command()
        def sweep() -> None:
            """Run the scheduled time-based rules."""
            run({"sweep"})

    @app.command()
    def dev() -> None:
        """Every role in one process: migrate, then api + relay (+ consume, sweep)."""
        roles = {"migrate", "api", "relay"}
        if definition.consumer is not None:
            roles.add("consume")
        if definition.background:
            roles.add("sweep")
        run(roles)

    return app
