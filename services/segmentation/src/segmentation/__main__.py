"""``python -m segmentation api | relay | consume | migrate | dev``."""

from __future__ import annotations

from pathlib import Path

from segmentation.application.projector import SegmentProjector
from segmentation.config import SegmentationSettings
from segmentation.entrypoints.api import build_api
from shared.events import topics
from shared.runtime import ConsumerSpec, Container, ServiceDefinition, build_cli


def build_projection(container: Container[SegmentationSettings]) -> SegmentProjector:
    return SegmentProjector(topic=container.topics.segmentation)


DEFINITION = ServiceDefinition(
    name="segmentation",
    settings_cls=SegmentationSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    build_api=build_api,
    consumer=ConsumerSpec(
        group_id="segmentation.projector",
        topics=[topics.CUSTOMERS, topics.ORDERS, topics.FEEDBACK],
        build_projection=build_projection,
    ),
)

if __name__ == "__main__":
    build_cli(DEFINITION)()
