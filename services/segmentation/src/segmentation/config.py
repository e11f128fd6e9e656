"""Settings of the segmentation service (env prefix ``SEGMENTATION_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import AwareDatetime, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import SimulatedClockSettings


class SegmentationSettings(SimulatedClockSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTATION_", extra="ignore")
    service_name: ClassVar[str] = "segmentation"
    http_port: int = 8004
    consumer_group: str = "segmentation.projector"
    # Larger polls than the shared default: a customer's events in one poll are graded once, and the
    # per-transaction costs are shared by more events (docs/segmentation.md, "Throughput").
    consumer_batch_size: int = Field(default=5000, ge=1, le=10_000)
    facts_cache_size: int = Field(
        default=20_000, ge=0, description="customers whose facts a consumer keeps in memory between polls"
    )
    policy_file: Path | None = Field(
        default=None, description="YAML policy (see services/segmentation/policy.default.yaml); unset = defaults"
    )
    sweep_interval_s: float = Field(
        default=3600, gt=0, description="how often the sweep re-assesses everyone (and recalibrates when due)"
    )
    clock_start: AwareDatetime | None = Field(
        default=None,
        description="run the engine's clock from this instant onwards (demos of historical data such as the "
        "Online Retail set, 2010–2011); refused in production",
    )
