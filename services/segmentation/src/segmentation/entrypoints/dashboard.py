"""The web dashboard: plain HTML, CSS and JavaScript modules served at ``/dashboard/``.

The pages hold no data and no secret, so they are served without a token (``PUBLIC_PATHS``); the
browser then reads this service's own API with the bearer token the user signs in with (kept in
``sessionStorage``, or taken once from the URL fragment ``#token=…``, which browsers never send to a
server). No build step and nothing fetched from elsewhere: the files below ``dashboard_assets/`` are
package data of ``segmentation``, found the same way from the source tree and from an installed wheel.

Every answer carries a strict Content-Security-Policy (scripts, styles and API calls from this origin
only, no inline script), so data rendered by the pages can never run as code even if a view forgot to
escape it (they build DOM nodes with ``textContent``; none uses ``innerHTML``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from segmentation.entrypoints import schemas

ASSETS = Path(__file__).resolve().with_name("dashboard_assets")
PREFIX = "/dashboard"
#: Served without a token: the static pages only (every API call they make needs one).
PUBLIC_PATHS = (PREFIX, f"{PREFIX}/")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time (cheap: ETag / Last-Modified → 304), so a new release is seen at once.
    "Cache-Control": "no-cache",
}


class DashboardFiles(StaticFiles):
    """Static files with the dashboard's security headers on every file served."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/dashboard/`` (``/dashboard`` redirects there)."""
    if not (ASSETS / "index.html").is_file():
        raise RuntimeError(f"dashboard assets missing: {ASSETS / 'index.html'} (package data not installed?)")

    @app.get(PREFIX, include_in_schema=False)
    async def dashboard_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.mount(PREFIX, DashboardFiles(directory=ASSETS, html=True), name="dashboard")


def caller_router(clock: Callable[[], datetime]) -> APIRouter:
    """``GET /caller``: who the token is and what it may do here (the dashboard enables actions by it),
    and the service's clock (the dashboard's time defaults follow it, not the browser's)."""
    router = APIRouter(tags=["session"])

    @router.get(
        "/caller",
        response_model=schemas.CallerOut,
        summary="The calling token: its short id, scopes, and whether it may read and act here",
    )
    async def caller(request: Request) -> Any:
        who = request.state.caller
        return {
            "caller": f"token:{who.id}",
            "scopes": sorted(who.scopes),
            "can_read": who.grants("segmentation:read"),
            "can_write": who.grants("segmentation:write"),
            "service_time": clock(),
        }

    return router
