"""The services' HTTP APIs as the CLI calls them: the one place that turns a failed call into a message.

Every answer outside 2xx — unless the caller expects that status, e.g. a 404 read as "not there" — becomes
an :class:`ApiError` that names the service, the status and what the service said (its ``detail``,
docs/api.md); a service that does not answer at all becomes one that asks whether the stack is up.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx


class ApiError(RuntimeError):
    """A call to a service API failed; the message says which service, what it answered and what to do."""


def new_client(headers: dict[str, str], timeout: float) -> httpx.Client:
    """A client for one command's calls (tests replace it with one on a fake transport)."""
    return httpx.Client(headers=headers, timeout=timeout)


def call(
    client: httpx.Client, service: str, method: str, url: str, *, accept: Collection[int] = (), **kwargs: Any
) -> httpx.Response:
    """``method url`` on ``client``; the response when it is a success or its status is in ``accept``."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ApiError(
            f"cannot reach the {service} API at {url} ({type(exc).__name__}: {exc or 'no answer'}); "
            "is the stack up? (tierstream up)"
        ) from exc
    return checked(service, response, accept=accept)


def checked(service: str, response: httpx.Response, *, accept: Collection[int] = ()) -> httpx.Response:
    """``response`` itself when it is a success or its status is in ``accept``; otherwise an :class:`ApiError`."""
    status = response.status_code
    if response.is_success or status in accept:
        return response
    said = detail(response)
    if status in (401, 403):
        raise ApiError(
            f"the {service} API refused the token (HTTP {status}: {said}); set TIERSTREAM_TOKEN to a token "
            "with the scope this needs (docs/api.md)"
        )
    request = response.request
    raise ApiError(f"the {service} API answered HTTP {status} to {request.method} {request.url.path}: {said}")


def detail(response: httpx.Response, width: int = 300) -> str:
    """What the service said: its ``detail`` (a message, or FastAPI's list of field errors), else the body."""
    try:
        said = response.json().get("detail")
    except (ValueError, AttributeError):
        said = None
    if isinstance(said, list):
        said = "; ".join(_field_error(error) for error in said)
    text = str(said) if said else response.text.strip() or response.reason_phrase
    return text if len(text) <= width else text[: width - 1] + "…"


def _field_error(error: object) -> str:
    if not isinstance(error, dict):
        return str(error)
    where = ".".join(str(part) for part in error.get("loc", ())[1:])  # loc[0] is "body", "query" or "path"
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))
