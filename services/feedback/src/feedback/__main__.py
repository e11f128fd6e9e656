"""``python -m feedback api | relay | migrate | dev``."""

from __future__ import annotations

from pathlib import Path

from feedback.bootstrap import wire
from feedback.config import FeedbackSettings
from feedback.entrypoints.api import build_api
from shared.runtime import ServiceDefinition, build_cli

DEFINITION = ServiceDefinition(
    name="feedback",
    settings_cls=FeedbackSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    build_api=build_api,
    bootstrap=wire,
)

if __name__ == "__main__":
    build_cli(DEFINITION)()
