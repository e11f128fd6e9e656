"""Bearer-token authentication and scope checks for every HTTP API (applied once, in ``create_app``).

Tokens come from settings (``TIERSTREAM_API_TOKENS``: token → scopes; development defaults otherwise,
see :class:`shared.settings.ApiSettings`). A scope is ``<service>:read`` or ``<service>:write``;
``*:read`` / ``*:write`` grant that access to every service and ``*`` grants everything. ``write``
implies ``read``. GET/HEAD/OPTIONS need ``<service>:read``; every other method needs ``<service>:write``.

Answers: no or malformed ``Authorization`` header, or an unknown token → 401 with
``WWW-Authenticate: Bearer``; a known token without the scope → 403 naming the missing scope (RFC 6750
error codes in the header). Operational paths (health, metrics, API docs) stay open.

Tokens are compared by their SHA-256 digests, so neither a dictionary lookup nor a log line ever
handles a token itself; the request's caller is identified by a short digest prefix (``caller``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths every API serves without a token (exact paths, or prefixes ending in "/").
DEFAULT_PUBLIC_PATHS = ("/health/", "/metrics", "/docs", "/docs/", "/openapi.json", "/redoc")
#: Name of the security scheme in the OpenAPI document.
SECURITY_SCHEME = "bearerAuth"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a short, non-reversible id of the token and its scopes."""

    id: str
    scopes: frozenset[str]

    def grants(self, needed: str) -> bool:
        service, access = needed.split(":", 1)
        wanted = {needed, f"*:{access}", "*"}
        if access == "read":
            wanted |= {f"{service}:write", "*:write"}
        return not self.scopes.isdisjoint(wanted)


class AuthError(Exception):
    def __init__(self, status: int, detail: str, challenge: str, missing_scope: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.challenge = challenge
        self.missing_scope = missing_scope


class TokenRegistry:
    """The tokens one API accepts.

    Each token's :class:`Caller` is built once, and each (token, scope) decision is taken once: the
    registry is fixed for the process's life and asked on every request."""

    def __init__(self, tokens: Mapping[str, Iterable[str]]) -> None:
        self._by_digest: dict[str, Caller] = {}
        for token, scopes in tokens.items():
            digest = token_digest(token)
            self._by_digest[digest] = Caller(id=digest[:12], scopes=frozenset(scopes))
        self._granted: dict[tuple[Caller, str], bool] = {}

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise AuthError(401, "missing bearer token (Authorization: Bearer <token>)", 'Bearer realm="tierstream"')
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(
                401,
                "malformed Authorization header; expected 'Bearer <token>'",
                'Bearer realm="tierstream", error="invalid_request"',
            )
        caller = self._by_digest.get(token_digest(token))
        if caller is None:
            raise AuthError(401, "invalid bearer token", 'Bearer realm="tierstream", error="invalid_token"')
        return caller

    def authorize(self, authorization: str | None, *, service: str, method: str) -> Caller:
        caller = self.authenticate(authorization)
        needed = required_scope(service, method)
        allowed = self._granted.get((caller, needed))
        if allowed is None:
            allowed = self._granted[(caller, needed)] = caller.grants(needed)
        if not allowed:
            raise AuthError(
                403,
                f"the token lacks the scope {needed!r}",
                f'Bearer realm="tierstream", error="insufficient_scope", scope="{needed}"',
                missing_scope=needed,
            )
        return caller


def required_scope(service: str, method: str) -> str:
    return f"{service}:{'read' if method.upper() in READ_METHODS else 'write'}"


def is_public(path: str, public_paths: Iterable[str]) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in public_paths)


class BearerAuthMiddleware:
    """ASGI middleware: authorize every HTTP request that is not to a public path.

    The caller is put in ``scope["state"]["caller"]`` (``request.state.caller`` in a route)."""

    def __init__(self, app: ASGIApp, *, service: str, registry: TokenRegistry, public_paths: Iterable[str]) -> None:
        self.app = app
        self.service = service
        self.registry = registry
        # is_public, split once: exact paths, and prefixes (those ending in "/")
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = tuple(p for p in self.public_paths if p.endswith("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.public_paths or path.startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        try:
            caller = self.registry.authorize(authorization, service=self.service, method=scope["method"])
        except AuthError as exc:
            await _send_auth_error(send, exc)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_auth_error(send: Send, exc: AuthError) -> None:
    body: dict[str, str] = {"detail": exc.detail}
    if exc.missing_scope is not None:
        body["missing_scope"] = exc.missing_scope
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"www-authenticate", exc.challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
