"""Process roles of every service: ``python -m <service> api | relay | consume | migrate | dev``.

A service describes itself once (:class:`ServiceDefinition`); this module turns that description into
a command line whose roles can run as separate processes (scale-out) or all in one (``dev``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import typer
import uvicorn
import uvloop
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.db.migrations import upgrade
from shared.events.topics import Topics
from shared.logging import configure_logging, get_logger
from shared.messaging.consumer import Projection, ProjectionConsumer
from shared.messaging.kafka import ensure_topics, make_producer
from shared.messaging.relay import OutboxRelay
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

    async def close(self) -> None:
        await self.engine.dispose()


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
    await upgrade(definition.migrations, settings.database_url)
    created = await ensure_topics(
        settings.kafka_bootstrap_servers,
        Topics(settings.topic_namespace).all(),
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )
    log.info("migrate.done", service=definition.name, topics_created=created)


async def serve_api(container: Container[Any], app: FastAPI, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app,
        host=container.settings.http_host,
        port=container.settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # C parser; the loop itself is uvloop, chosen by build_cli's runner (uvicorn's own
        # loop setting only applies when uvicorn creates the loop).
        http="httptools",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    watcher = asyncio.create_task(_stop_server_on(stop, server))
    try:
        await server.serve()
    finally:
        watcher.cancel()
        stop.set()


async def _stop_server_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True


async def run_relay(container: Container[Any], service: str, stop: asyncio.Event) -> None:
    settings = container.settings
    producer = make_producer(settings.kafka_bootstrap_servers, client_id=f"{service}-relay")
    await _start_with_retry(producer.start, stop, what="kafka producer")
    try:
        relay = OutboxRelay(
            container.engine,
            producer,
            service=service,
            batch_size=settings.relay_batch_size,
            idle_interval_s=settings.relay_idle_interval_s,
            retention=timedelta(hours=settings.outbox_retention_hours),
        )
        await relay.run(stop)
    finally:
        await producer.stop()


async def run_consumer(container: Container[Any], spec: ConsumerSpec, stop: asyncio.Event) -> None:
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
    container = definition.container(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[Awaitable[None]] = []
    if "api" in roles:
        tasks.append(serve_api(container, definition.build_api(container), stop))
    if "relay" in roles:
        tasks.append(run_relay(container, definition.name, stop))
    if "consume" in roles:
        if definition.consumer is None:
            raise typer.BadParameter(f"{definition.name} has no consumer role")
        tasks.append(run_consumer(container, definition.consumer, stop))
    if "sweep" in roles:
        tasks.extend(job(container, stop) for job in definition.background)
    log.info("service.starting", service=definition.name, roles=sorted(roles))
    try:
        results = await asyncio.gather(*(_until_stop(t, stop) for t in tasks), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
    finally:
        await container.close()
        log.info("service.stopped", service=definition.name)


async def _until_stop(task: Awaitable[None], stop: asyncio.Event) -> None:
    """Run one role; if it fails, stop the others too (a process is healthy as a whole or exits)."""
    try:
        await task
    except Exception:
        log.exception("role.failed")
        stop.set()
        raise


def build_cli(definition: ServiceDefinition[Any]) -> typer.Typer:
    app = typer.Typer(help=f"Tierstream {definition.name} service", no_args_is_help=True, add_completion=False)

    def run(roles: set[str]) -> None:
        with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_run_roles(definition, roles))

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
