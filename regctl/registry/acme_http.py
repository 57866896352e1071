"""The plain-HTTP listener of ``acme.httpaddr``: HTTP-01 tokens, and a redirect to HTTPS for everything else.

Every worker serves it next to the registry. ``GET``/``HEAD /.well-known/acme-challenge/<token>`` answers
with the file ``challengedir/<token>`` that the webroot responder wrote (RFC 8555 §8.3: the key
authorization, as text/plain), so a renewal needs no port of its own and no restart. Tokens are base64url
(§8.1): any other character, a missing file or no ``challengedir`` gives 404, so nothing outside the
directory is ever read. Any other request gets a 308 to the same path over HTTPS: on ``http.host`` when
configured (the public URL behind a port mapping), else on the request's host at the registry's port.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from regctl.tls.challenge_spec import HTTP01_PREFIX

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
# A Host header: a DNS name or IPv4 address, or an IPv6 address in brackets, and an optional port.
_HOST_RE = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def create_challenge_app(
    challenge_dir: str | None, *, scheme: str, port: int, base_url: str | None = None
) -> web.Application:
    """The listener's application: tokens from ``challenge_dir``; anything else redirected to
    ``base_url`` + path when given, else to ``scheme://<request host>:port`` + path (no port when it is the
    scheme's default)."""
    directory = Path(challenge_dir) if challenge_dir else None
    base = base_url.rstrip("/") if base_url else None

    async def handle(request: web.Request) -> web.StreamResponse:
        path, _, _ = request.raw_path.partition("?")
        if path.startswith(HTTP01_PREFIX) and request.method in ("GET", "HEAD"):
            return _token(directory, path[len(HTTP01_PREFIX) :])
        target = base or _origin(request, scheme, port)
        if target is None:
            raise web.HTTPBadRequest(text="missing or invalid Host header\n")
        raise web.HTTPPermanentRedirect(target + request.raw_path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _token(directory: Path | None, token: str) -> web.StreamResponse:
    if directory is None or not _TOKEN_RE.fullmatch(token):
        raise web.HTTPNotFound()
    try:
        # A few dozen bytes on a local disk: reading inline is cheaper than a thread hop.
        body = (directory / token).read_bytes()
    except OSError:  # not (or no longer) there, or unreadable
        raise web.HTTPNotFound() from None
    return web.Response(body=body, content_type="text/plain")


def _origin(request: web.Request, scheme: str, port: int) -> str | None:
    m = _HOST_RE.fullmatch(request.headers.get("Host", ""))
    if m is None:
        return None
    suffix = "" if port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{m['host'].lower()}{suffix}"
