"""``python -m feedback api | relay | sweep | migrate | dev | reindex``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from feedback.adapters.postgres import PostgresComplaints
from feedback.application.sweep import EscalationSweep, run_periodically
from feedback.bootstrap import wire
from feedback.config import FeedbackSettings
from feedback.entrypoints.api import build_api
from shared.logging import configure_logging, get_logger
from shared.runtime import Container, ServiceDefinition, build_cli

log = get_logger(__name__)


async def sla_sweeper(container: Container[FeedbackSettings], stop: asyncio.Event) -> None:
    """Background role: escalate SLA breaches every ``FEEDBACK_SWEEP_INTERVAL_S`` seconds."""
    sweep: EscalationSweep = container.parts["sweep"]
    await run_periodically(sweep, stop, interval_s=container.settings.sweep_interval_s)


DEFINITION = ServiceDefinition(
    name="feedback",
    settings_cls=FeedbackSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    build_api=build_api,
    bootstrap=wire,
    background=[sla_sweeper],
)


def cli() -> typer.Typer:
    app = build_cli(DEFINITION)

    @app.command()
    def reindex() -> None:
        """Rebuild the complaint read model (table ``complaints``) from the complaint streams."""

        async def run() -> None:
            settings = FeedbackSettings()
            configure_logging(DEFINITION.name, settings.log_level, settings.log_format)
            container = DEFINITION.container(settings)
            try:
                complaints: PostgresComplaints = container.parts["complaints"]
                log.info("reindex.done", complaints=await complaints.reindex_all())
            finally:
                await container.close()

        asyncio.run(run())

    return app


if __name__ == "__main__":
    cli()()
