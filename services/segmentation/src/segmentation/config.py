"""Settings of the segmentation service (env prefix ``SEGMENTATION_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTATION_", extra="ignore")
    service_name: ClassVar[str] = "segmentation"
    http_port: int = 8004
    consumer_group: str = "segmentation.projector"
