"""``python -m orders api | relay | migrate | dev``."""

from __future__ import annotations

from pathlib import Path

from orders.bootstrap import wire
from orders.config import OrdersSettings
from orders.entrypoints.api import build_api
from shared.runtime import ServiceDefinition, build_cli

DEFINITION = ServiceDefinition(
    name="orders",
    settings_cls=OrdersSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    build_api=build_api,
    bootstrap=wire,
)

if __name__ == "__main__":
    build_cli(DEFINITION)()
