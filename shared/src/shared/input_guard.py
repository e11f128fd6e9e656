"""Input no route can take, refused before any route runs (:class:`InputGuardMiddleware`), and the echo of
what a caller sent, cut short, in validation errors (:func:`echoed_input`)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.middleware import header, read_body, replay_body

#: The ``input`` a validation error echoes is cut to this many characters per string and items per list or
#: object (a 5 MB comment must not come back as a 5 MB 422), and to this depth of nesting.
ECHO_MAX_CHARS = 200
ECHO_MAX_ITEMS = 20
ECHO_MAX_DEPTH = 4
#: Methods whose body a route reads: only JSON is accepted there.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class InputGuardMiddleware:
    """Refuse, before any route sees it, input that no route can take.

    * A NUL character (``\\u0000``) anywhere — the path, a query parameter, a string of a JSON body: PostgreSQL
      text cannot hold it, so it would fail deep in a handler as a 500. → 422 with one field error in FastAPI's
      shape whose ``loc`` says where: ``["path"]``, ``["query", "region"]``, ``["body", "lines", 0, "sku"]``.
    * A body on POST/PUT/PATCH whose ``Content-Type`` is not JSON (``application/json`` or ``…+json``) → 415:
      the routes parse every body as JSON whatever it claims to be.

    Cheap on the hot path: the path and query string are searched for a NUL as they are; a body is parsed
    again only when its raw bytes hold the JSON escape ``\\u0000`` (the only way JSON carries a NUL)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _nul_in_path_or_query(scope)
        if refusal is None and scope["method"] in BODY_METHODS and _has_body(scope):
            refusal = _not_json(scope)
            if refusal is None:
                body = await read_body(receive)
                refusal = _nul_in_body(body)
                receive = replay_body(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _nul_in_path_or_query(scope: Scope) -> JSONResponse | None:
    if "\x00" in scope["path"]:
        return _nul_error(["path"], scope["path"])
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return _nul_error(["query", name], value)
    return None


def _nul_in_body(body: bytes) -> JSONResponse | None:
    if b"\\u0000" not in body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON after all, or nested too deeply to parse: the route refuses it
    found = _nul_inside(document)
    return None if found is None else _nul_error(["body", *found[0]], found[1])


def _nul_inside(document: Any) -> tuple[list[str | int], str] | None:
    """Where the first string (object key or value) holding a NUL is in a parsed JSON document, depth first
    in document order. Iterative: a document nested as deeply as the parser allows is no RecursionError."""
    pending: list[tuple[list[str | int], Any]] = [([], document)]
    while pending:
        loc, value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return loc, value
            continue
        items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        children: list[tuple[list[str | int], Any]] = []
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                return [*loc, key], key
            children.append(([*loc, key], item))
        pending.extend(reversed(children))
    return None


#: Entries of a ``loc`` shown in a NUL error before it is cut.
_LOC_MAX = 20


def _nul_error(loc: list[str | int], value: str) -> JSONResponse:
    where = {"path": "the path", "query": "query parameter"}.get(str(loc[0]), "body field")
    if len(loc) > 1:
        where += " " + ".".join(str(part) for part in loc[1:_LOC_MAX]) + ("…" if len(loc) > _LOC_MAX else "")
    shown = loc if len(loc) <= _LOC_MAX else [*loc[:_LOC_MAX], "…"]  # a deeply nested body: the way in, cut
    error = {
        "type": "string_contains_nul",
        "loc": shown,
        "msg": f"{where} contains a NUL character (\\u0000), which no text may hold",
        "input": echoed_input(value),
    }
    return JSONResponse({"detail": [error]}, status_code=422)


def _has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return header(scope, b"transfer-encoding") is not None


def _not_json(scope: Scope) -> JSONResponse | None:
    given = header(scope, b"content-type")
    media_type = (given or "").partition(";")[0].strip().lower()
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return None
    what = f"Content-Type {given!r}" if given else "no Content-Type"
    detail = f"the request body must be JSON, sent with Content-Type: application/json; this one came with {what}"
    return JSONResponse({"detail": detail, "code": "unsupported_media_type"}, status_code=415)


def echoed_input(value: Any, depth: int = 0) -> Any:
    """``value`` as an error may echo it back: strings cut at :data:`ECHO_MAX_CHARS` characters, lists and
    objects at :data:`ECHO_MAX_ITEMS` items and :data:`ECHO_MAX_DEPTH` levels, each cut marked with "…"."""
    if isinstance(value, str):
        if len(value) <= ECHO_MAX_CHARS:
            return value
        return f"{value[:ECHO_MAX_CHARS]}… ({len(value)} characters, cut)"
    if isinstance(value, dict | list) and depth >= ECHO_MAX_DEPTH:
        return f"… ({len(value)} items, cut)"
    if isinstance(value, dict):
        shown = {key: echoed_input(item, depth + 1) for key, item in list(value.items())[:ECHO_MAX_ITEMS]}
        if len(value) > ECHO_MAX_ITEMS:
            shown["…"] = f"{len(value) - ECHO_MAX_ITEMS} more fields, cut"
        return shown
    if isinstance(value, list):
        shown_items = [echoed_input(item, depth + 1) for item in value[:ECHO_MAX_ITEMS]]
        if len(value) > ECHO_MAX_ITEMS:
            shown_items.append(f"… {len(value) - ECHO_MAX_ITEMS} more items, cut")
        return shown_items
    return value
