"""Migration 0005 gives customer_credit rows written before it stream version 0, so the next event for
them applies whatever its version — the consumer's behaviour before the versions were kept."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from orders.__main__ import DEFINITION
from orders.adapters.ledger import load_customers
from orders.application.credit_terms import CreditTermsProjector
from shared.db.engine import create_engine
from shared.db.migrations import upgrade
from shared.events import customers
from shared.testing.events import customer_event

pytestmark = pytest.mark.integration


async def test_rows_from_before_migration_0005_take_their_next_event_whatever_its_version(
    unmigrated_database: str,
) -> None:
    url = unmigrated_database
    await upgrade(DEFINITION.migrations, url, revision="0004")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO customer_credit (customer_id, registered, active, credit_limit, limit_currency, "
                    "payment_days, rating, credit_version) VALUES ('c-1', true, false, 1000, 'CNY', 30, 'B', 7)"
                )
            )

        await upgrade(DEFINITION.migrations, url)

        async with engine.connect() as conn:
            [before] = (await load_customers(conn, ["c-1"], lock=False)).values()
        assert (before.terms_stream_version, before.status_stream_version, before.version) == (0, 0, 7)
        reactivated = customer_event("c-1", customers.CustomerReactivated(reason="reopened"), 2)
        async with engine.begin() as conn:
            await CreditTermsProjector().apply(conn, [reactivated])
            [after] = (await load_customers(conn, ["c-1"], lock=False)).values()
        assert (after.active, after.status_stream_version, after.version) == (True, 2, 8)
        assert after.terms == before.terms and after.terms_stream_version == 0
    finally:
        await engine.dispose()
