"""Alert commands' bodies as the write APIs' (QA round 2): an unknown field is a 422 naming it, never
silently dropped (a misspelt ``closed_by``); an acknowledgement needs no body (every field is optional);
a reason of blanks or invisible characters is ``string_blank``, like the other services; an empty region
filter is a 422 (it matched nothing)."""

from __future__ import annotations

import pytest
from engine_harness import Segmentation

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("closure", {"reason": "won back", "closed_by": "ops-7"}),
        ("acknowledgement", {"by": "ops-7", "note": "called"}),
        ("snooze", {"until": "2026-01-01T00:00:00Z", "reason": "holiday"}),
    ],
)
async def test_an_unknown_field_of_an_alert_command_is_a_422_naming_it(
    segmentation: Segmentation, action: str, body: dict[str, object]
) -> None:
    response = await segmentation.http.post(f"/alerts/al-any/{action}", json=body)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "extra_forbidden" and error["loc"][0] == "body"


async def test_an_acknowledgement_without_a_body_reaches_the_alert(segmentation: Segmentation) -> None:
    response = await segmentation.http.post("/alerts/al-nowhere/acknowledgement")

    assert response.status_code == 404, response.text  # the body was accepted: the alert is what is missing


@pytest.mark.parametrize("reason", ["   ", "\u200b\u200b", "\u0006\u001e"])
async def test_a_reason_of_blanks_or_invisible_characters_is_string_blank(
    segmentation: Segmentation, reason: str
) -> None:
    response = await segmentation.http.post("/alerts/al-any/closure", json={"reason": reason})

    assert response.status_code == 422, response.text
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(["body", "reason"], "string_blank")]


async def test_an_empty_region_filter_is_a_422_not_an_empty_list(segmentation: Segmentation) -> None:
    response = await segmentation.http.get("/customers", params={"region": ""})

    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["query", "region"]]
