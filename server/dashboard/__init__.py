"""The web dashboard: static files shipped in the package, served with a strict policy.

Everything the page shows comes from signed ``/api`` calls and ``/pubsub`` subscriptions made
in the browser with the user's own key; the server keeps nothing for the dashboard. The page is
plain HTML, CSS and ES modules (no build step); third-party code lives in ``static/vendor`` with
its version and licence (``static/vendor/README.md``).
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/dashboard/static"

# Host headers we reflect into connect-src (ws:// and wss:// to the page's own host); anything
# else falls back to 'self' alone.
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def content_security_policy(host: str) -> str:
    """The page's policy: only its own files and its own server, no inline code, no framing."""
    connect = "'self'"
    if _HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src {connect}",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


def _secure(response: web.StreamResponse, host: str) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = content_security_policy(host)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _index(request: web.Request) -> web.StreamResponse:
    return _secure(web.FileResponse(STATIC_DIR / "index.html"), request.host)


async def _secure_static(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(STATIC_PREFIX + "/"):
        _secure(response, request.host)


def add_routes(app: web.Application) -> None:
    """``GET /`` (the page) and ``GET /dashboard/static/...`` (its files)."""
    app.router.add_get("/", _index)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, follow_symlinks=False, append_version=False)
    app.on_response_prepare.append(_secure_static)
