"""``python -m orders api | relay | consume | sweep | migrate | dev``.

``consume`` keeps the customers' credit terms and status (group ``orders.credit-terms``, topic
``crm.customers.v1``); ``sweep`` reports overdue receivables on a schedule. ``dev`` runs them all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from orders.application.credit_terms import CreditTermsProjector
from orders.application.overdue import run_periodically
from orders.bootstrap import wire
from orders.config import OrdersSettings
from orders.entrypoints.api import build_api
from shared.events import topics
from shared.runtime import ConsumerSpec, Container, ServiceDefinition, build_cli


def build_projection(_container: Container[OrdersSettings]) -> CreditTermsProjector:
    return CreditTermsProjector()


async def overdue_sweep(container: Container[OrdersSettings], stop: asyncio.Event) -> None:
    await run_periodically(container.parts["overdue_sweep"], container.settings.overdue_sweep_interval_s, stop)


DEFINITION = ServiceDefinition(
    name="orders",
    settings_cls=OrdersSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    build_api=build_api,
    bootstrap=wire,
    consumer=ConsumerSpec(
        group_id="orders.credit-terms",
        topics=[topics.CUSTOMERS],
        build_projection=build_projection,
    ),
    background=[overdue_sweep],
)

if __name__ == "__main__":
    build_cli(DEFINITION)()
