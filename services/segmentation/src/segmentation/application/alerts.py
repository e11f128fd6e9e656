"""Operator commands on churn alerts: acknowledge, snooze until, close with a reason.

Each command is a decision that is not a function of the events, so it is recorded with the time it took
effect and who made it (``alert_log``) in the same transaction that changes the alert. The customer's
row is locked first (the order the consumer uses), so a command never races a live assessment of the
same alert. Closing by hand publishes ChurnRiskCleared; an illegal move is an
:class:`~segmentation.domain.churn.AlertTransitionError` (HTTP 409).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentation.application import public_events
from segmentation.domain import churn
from segmentation.domain.churn import Alert
from segmentation.domain.policy import Bands
from segmentation.projections.read_model import churn_alerts, customer_segments
from segmentation.projections.store import Changes, alert_from_row, alert_row, save
from shared.messaging.outbox import write_outbox


class AlertAction(StrEnum):
    ACKNOWLEDGE = "acknowledged"
    SNOOZE = "snoozed"
    CLOSE = "closed"


class AlertNotFound(LookupError):
    pass


async def handle_alert_command(
    db: AsyncEngine,
    *,
    topic: str,
    bands: Bands,
    alert_id: str,
    action: AlertAction,
    now: datetime,
    actor: str,
    correlation_id: str,
    until: datetime | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Apply one operator action and return the alert row after it."""
    async with db.begin() as conn:
        customer_id = (
            await conn.execute(select(churn_alerts.c.customer_id).where(churn_alerts.c.alert_id == alert_id))
        ).scalar()
        if customer_id is None:
            raise AlertNotFound(alert_id)
        segment = (
            (
                await conn.execute(
                    select(customer_segments.c.segmentation_version, customer_segments.c.churn_score)
                    .where(customer_segments.c.customer_id == customer_id)
                    .with_for_update()
                )
            )
            .mappings()
            .one()
        )
        row = (
            (await conn.execute(select(churn_alerts).where(churn_alerts.c.alert_id == alert_id).with_for_update()))
            .mappings()
            .one()
        )
        before = alert_from_row(row)
        after = _act(before, action, now, actor, until, reason)
        changes = Changes(alerts=[alert_row(alert_id, customer_id, after)])
        detail: dict[str, Any] = {"from": str(before.state)}
        if until is not None:
            detail["until"] = until.isoformat()
        if reason is not None:
            detail["reason"] = reason
        changes.alert_log.append(
            {
                "alert_id": alert_id,
                "customer_id": customer_id,
                "action": str(action),
                "at": now,
                "actor": actor,
                "score": after.last_score,
                "detail": detail,
            }
        )
        await save(conn, changes)
        if action is AlertAction.CLOSE:
            version = segment["segmentation_version"] + 1
            score = segment["churn_score"]
            payload = public_events.risk_cleared(
                alert_id, score, str(churn.band(score, bands)), score, f"closed by {actor}: {after.close_reason}"
            )
            message = public_events.message(
                payload,
                topic=topic,
                customer_id=customer_id,
                version=version,
                at=now,
                correlation_id=correlation_id,
                causation_id=None,
            )
            await write_outbox(conn, [message])
            await conn.execute(
                update(customer_segments)
                .where(customer_segments.c.customer_id == customer_id)
                .values(segmentation_version=version)
            )
        return alert_row(alert_id, customer_id, after)


def _act(
    alert: Alert, action: AlertAction, now: datetime, actor: str, until: datetime | None, reason: str | None
) -> Alert:
    commands: dict[AlertAction, Callable[[], Alert]] = {
        AlertAction.ACKNOWLEDGE: lambda: churn.acknowledge(alert, now, actor),
        AlertAction.SNOOZE: lambda: churn.snooze(alert, until or now, now, actor),
        AlertAction.CLOSE: lambda: churn.close(alert, reason or "", now, actor),
    }
    return commands[action]()
