"""``python -m customers api | relay | migrate | dev``."""

from __future__ import annotations

from pathlib import Path

from customers.bootstrap import wire
from customers.config import CustomersSettings
from customers.entrypoints.api import build_api
from shared.runtime import ServiceDefinition, build_cli

DEFINITION = ServiceDefinition(
    name="customers",
    settings_cls=CustomersSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    build_api=build_api,
    bootstrap=wire,
)

if __name__ == "__main__":
    build_cli(DEFINITION)()
