"""Input no route can take, refused before any route runs (:class:`InputGuardMiddleware`) — among it query
parameters the matched operation does not declare (:class:`DeclaredQueries`) —, and the echo of what a caller
sent, cut short, in validation errors (:func:`echoed_input`)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params, get_validation_alias
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
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
    * Given ``routes`` (the app's): a query parameter the operation the request is routed to does not declare,
      or a single-valued one given twice → 422 (:class:`DeclaredQueries`), except on ``exempt_paths``.

    Cheap on the hot path: the path and query string are searched for a NUL as they are; a body is parsed
    again only when its raw bytes hold the JSON escape ``\\u0000`` (the only way JSON carries a NUL); an empty
    query string is never parsed nor routed. Built when the app builds its middleware stack (its first
    request or lifespan event), when every route is in place."""

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute] | None = None, exempt_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.queries = None if routes is None else DeclaredQueries(routes, exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _nul_in_path_or_query(scope)
        if refusal is None and self.queries is not None and scope.get("query_string"):
            refusal = self.queries.refusal(scope)
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


class DeclaredQueries:
    """The query parameters each operation of an app declares, to refuse the others (422).

    FastAPI ignores a query parameter no operation parameter names: ``GET /customers?teir=vip`` (for ``tier``)
    would list everyone. Here such a parameter is a 422 ``extra_forbidden`` at ``["query", "teir"]`` whose
    message names the parameters the operation accepts, as an unknown body field is (``RequestBody``).

    * Names are exact, as FastAPI reads them: ``?TIER=vip`` is unknown too (the message suggests ``tier``).
    * A parameter declared with one value given several times (``?tier=vip&tier=key``) is a 422
      ``repeated_parameter``: FastAPI would use the last value and drop the others as silently. A list-typed
      parameter (``Query()`` on a ``list[...]``) takes repeats, as FastAPI reads it.
    * Declared = the operation's own query parameters and those of its dependencies (router and app
      dependencies included), by alias (``status_`` declared ``Query(alias="status")`` is ``status``); a
      query model's fields, flattened as FastAPI flattens them. Computed once per operation, here.
    * Not checked: paths in ``exempt_paths`` (the app's public ones: ``/health/*``, ``/metrics``, ``/docs``,
      ``/openapi.json``, static pages, which browsers and tools call with query strings of their own, e.g.
      ``?v=2`` to bust a cache, ``?code=…`` on ``/docs/oauth2-redirect``), routes that are not FastAPI
      operations (a static files mount), and requests no operation matches (404 / 405 as before).

    The request is matched as the router matches it: the first route, in the app's order, matching in full."""

    def __init__(self, routes: Sequence[BaseRoute], exempt_paths: Iterable[str] = ()) -> None:
        exempt = frozenset(exempt_paths)  # as shared.auth.is_public reads them, split once
        self.exempt_exact, self.exempt_prefixes = exempt, tuple(p for p in exempt if p.endswith("/"))
        # A route every path of which is exempt (/health/live, a mount at a public prefix) is left out: a
        # request it could match has returned before the lookup. Without a path format (a host), kept.
        self.candidates = [
            _candidate(context)
            for context in iter_route_contexts(routes)
            if not self._exempt(getattr(context, "path_format", None) or "{")
        ]

    def _exempt(self, path: str) -> bool:
        return path in self.exempt_exact or path.startswith(self.exempt_prefixes)

    def refusal(self, scope: Scope) -> JSONResponse | None:
        """The 422 for the request's query string, or None when the operation takes it (or is not checked)."""
        path = get_route_path(scope)
        if self._exempt(path):
            return None
        method = scope["method"]
        for path_regex, methods, declared, context in self.candidates:
            if methods is not None and method not in methods:
                continue  # at most a partial match (another method): the router looks further too
            if path_regex is None:  # a route matched some other way (a host): ask it
                if context.matches(scope)[0] is not Match.FULL:
                    continue
            elif path_regex.match(path) is None:
                continue
            refused = None if declared is None else declared.refusal(scope["query_string"])
            if refused is not None:
                scope["route"] = context.original_route  # the request metrics name the operation, not "unmatched"
            return refused
        return None


_Candidate = tuple[re.Pattern[str] | None, Collection[str] | None, "_Declared | None", RouteContext]


def _candidate(context: RouteContext) -> _Candidate:
    """How the router matches a route (its path pattern and methods, as Starlette's ``Route.matches`` and
    ``Mount.matches`` test them), and what it declares when it is a FastAPI operation."""
    declared = _Declared(context.dependant) if isinstance(context.original_route, APIRoute) else None
    return getattr(context, "path_regex", None), getattr(context, "methods", None), declared, context


class _Declared:
    """One operation's query parameters: names in declaration order, and those that take several values."""

    def __init__(self, dependant: Dependant) -> None:
        own: list[ModelField] = []
        pending = [dependant]
        while pending:  # the operation, then its dependencies depth first: the OpenAPI document's order
            current = pending.pop()
            own.extend(current.query_params)
            pending.extend(reversed(current.dependencies))
        fields = get_flat_params(Dependant(query_params=own))  # a query model → its fields
        self.names = list(dict.fromkeys(get_validation_alias(field) for field in fields))
        self.repeatable = frozenset(
            get_validation_alias(field) for field in fields if field_annotation_is_sequence(field.field_info.annotation)
        )
        self.accepted = (
            f"this operation accepts: {', '.join(self.names)}"
            if self.names
            else "this operation takes no query parameters"
        )

    def refusal(self, query: bytes) -> JSONResponse | None:
        given: dict[str, list[str]] = {}
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):  # as Starlette reads it
            given.setdefault(name, []).append(value)
        errors: list[dict[str, Any]] = []
        for name, values in given.items():
            if name not in self.names:
                errors.append(_query_error("extra_forbidden", name, self._unknown(name), values))
            elif len(values) > 1 and name not in self.repeatable:
                msg = f"given {len(values)} times; this query parameter takes one value"
                errors.append(_query_error("repeated_parameter", name, msg, values))
            if len(errors) == ECHO_MAX_ITEMS:  # a query string of thousands of names: the first ones make the point
                break
        return JSONResponse({"detail": errors}, status_code=422) if errors else None

    def _unknown(self, name: str) -> str:
        near = difflib.get_close_matches(name.lower(), self.names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"unknown query parameter{hint}; {self.accepted}"


def _query_error(kind: str, name: str, msg: str, values: list[str]) -> dict[str, Any]:
    """One field error in FastAPI's shape; ``input`` is the value given, or the values when given repeatedly
    (as FastAPI echoes an unknown field of a query model)."""
    value: str | list[str] = values[0] if len(values) == 1 else values
    return {"type": kind, "loc": ["query", echoed_input(name)], "msg": msg, "input": echoed_input(value)}


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
