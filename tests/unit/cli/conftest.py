"""The services' APIs as the CLI's tests fake them: answers by (method, path) on an in-memory transport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tierstream import api

#: (method, path) → (status, JSON body), or an exception to raise (a service that does not answer).
Answers = dict[tuple[str, str], tuple[int, Any] | Exception]


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    """Every API call the CLI makes goes to these answers; an unlisted call is a 404 ``not found``."""
    routes: Answers = {}

    def handler(request: httpx.Request) -> httpx.Response:
        answer = routes.get((request.method, request.url.path), (404, {"detail": "not found"}))
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return httpx.Response(status, json=body)

    def fake_client(headers: dict[str, str], timeout: float) -> httpx.Client:
        return httpx.Client(headers=headers, timeout=timeout, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(api, "new_client", fake_client)
    return routes
