"""Settings of the feedback service (env prefix ``FEEDBACK_``).

The complaint SLA policy is part of them (see :mod:`feedback.domain.sla` and docs/feedback.md):
override one number with ``FEEDBACK_SLA__CRITICAL__ACKNOWLEDGE_HOURS=1`` or the whole policy with
``FEEDBACK_SLA='{"critical": {"acknowledge_hours": 1, "resolve_days": 0.5}, ...}'``; an invalid policy
stops the process at start with the offending field named. ``FEEDBACK_CLOCK_START`` (demos of
historical data, refused in production) starts the SLA sweep's clock at a past instant.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field
from pydantic_settings import SettingsConfigDict

from feedback.domain.sla import SlaPolicy
from shared.settings import SimulatedClockSettings


class FeedbackSettings(SimulatedClockSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDBACK_", env_nested_delimiter="__", extra="ignore")
    service_name: ClassVar[str] = "feedback"
    http_port: int = 8003

    sla: SlaPolicy = Field(default_factory=SlaPolicy, description="complaint SLA targets per severity")
    sweep_interval_s: float = Field(default=60, gt=0, le=86_400, description="seconds between SLA sweeps")
    sweep_batch_size: int = Field(default=200, ge=1, le=10_000, description="complaints read per sweep page")
    clock_start: AwareDatetime | None = Field(
        default=None,
        description="run the service's business clock (commands given no date, the SLA sweep) from this instant "
        "onwards (demos of historical data such as the Online Retail set, 2010–2011); refused in production",
    )
