"""Operator commands on churn alerts: acknowledge, snooze until, close with a reason.

Each command is a decision that is not a function of the events, so it is recorded with the time it took
effect, who made it and the point of the input streams it was made at (``alert_log``: ``at``, ``actor``,
``consumer_offsets``) in the same transaction that changes the alert, and ``rebuild`` applies it again at
that point (:func:`replay_alert_action`), as it does with recalibrations. The customer's row is locked
first (the order the consumer uses), so a command never races a live assessment of the same alert, and
the offsets read after that lock are exactly the customer's events the alert was graded from: a poll with
more of them waits for the lock and commits its offsets after the command. Closing by hand publishes
ChurnRiskCleared; an illegal move is an :class:`~segmentation.domain.churn.AlertTransitionError` (HTTP 409).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentation.application import public_events
from segmentation.domain import churn
from segmentation.domain.churn import Alert
from segmentation.domain.policy import Bands
from segmentation.projections.calibrations import consumer_offsets
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
        await _lock_customer(conn, customer_id)
        row = (
            (await conn.execute(select(churn_alerts).where(churn_alerts.c.alert_id == alert_id).with_for_update()))
            .mappings()
            .one()
        )
        command = _Command(action, now, actor, until, reason)
        return await _apply(conn, topic, bands, row, command, correlation_id, await consumer_offsets(conn))


async def replay_alert_action(conn: AsyncConnection, *, topic: str, bands: Bands, logged: Mapping[str, Any]) -> bool:
    """Apply an operator action recorded in the live ``alert_log`` (``logged``) to the same customer's live
    alert here, as ``rebuild`` does at the offsets it was recorded at. Alert ids are not compared (they
    name the instant an alert was raised, which the rebuild's clock decides); the alert must be in the state
    the action was taken from, else it is not applied and False is returned (the rebuild then reports that
    customer's alert as not compared)."""
    await _lock_customer(conn, logged["customer_id"])
    row = (
        (
            await conn.execute(
                select(churn_alerts)
                .where(churn_alerts.c.customer_id == logged["customer_id"], churn_alerts.c.state != "closed")
                .with_for_update()
            )
        )
        .mappings()
        .one_or_none()
    )
    detail = logged["detail"]
    if row is None or row["state"] != detail.get("from"):
        return False
    until = datetime.fromisoformat(detail["until"]) if "until" in detail else None
    command = _Command(AlertAction(logged["action"]), logged["at"], logged["actor"], until, detail.get("reason"))
    try:
        await _apply(conn, topic, bands, row, command, "rebuild", logged["consumer_offsets"])
    except churn.AlertTransitionError:
        return False
    return True


async def _lock_customer(conn: AsyncConnection, customer_id: str) -> None:
    await conn.execute(
        select(customer_segments.c.customer_id).where(customer_segments.c.customer_id == customer_id).with_for_update()
    )


@dataclass(frozen=True, slots=True)
class _Command:
    action: AlertAction
    now: datetime
    actor: str
    until: datetime | None
    reason: str | None


async def _apply(
    conn: AsyncConnection,
    topic: str,
    bands: Bands,
    row: Mapping[Any, Any],
    command: _Command,
    correlation_id: str,
    offsets: list[dict[str, Any]],
) -> dict[str, Any]:
    """``command`` on the locked alert ``row``: the new alert row, its ``alert_log`` entry and, for a
    close, ChurnRiskCleared in the outbox."""
    alert_id, customer_id = row["alert_id"], row["customer_id"]
    action, now, actor, until, reason = command.action, command.now, command.actor, command.until, command.reason
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
            "consumer_offsets": offsets,
        }
    )
    await save(conn, changes)
    if action is AlertAction.CLOSE:
        segment = (
            (
                await conn.execute(
                    select(customer_segments.c.segmentation_version, customer_segments.c.churn_score).where(
                        customer_segments.c.customer_id == customer_id
                    )
                )
            )
            .mappings()
            .one()
        )
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
