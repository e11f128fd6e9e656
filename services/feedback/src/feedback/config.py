"""Settings of the feedback service (env prefix ``FEEDBACK_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDBACK_", extra="ignore")
    service_name: ClassVar[str] = "feedback"
    http_port: int = 8003
