"""``GET``/``POST /auth/token``: the built-in token service's endpoint (``auth/issuer.py`` decides).

- GET, Docker's token spec ("Requesting a Token"): ``service``, repeated ``scope``, credentials as Basic auth
  (none: anonymous), ``offline_token=true`` for a refresh token.
- POST, the OAuth2 form ``docker login`` and the Docker engine use ("OAuth2 Token": RFC 6749 4.3 and 6):
  ``grant_type=password`` with ``username``/``password``, or ``grant_type=refresh_token`` with
  ``refresh_token``; ``scope`` space-separated; ``access_type=offline`` for a refresh token.

Wrong credentials answer 401 with the registry's error envelope (which Docker prints) and a Basic challenge;
a malformed request 400 with an RFC 6749 error object.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from aiohttp import web

from regctl.registry.auth.basic import basic_credentials
from regctl.registry.auth.issuer import TokenIssuer
from regctl.registry.errors import ErrorCode, RegistryError, render

ISSUER = web.AppKey("token-issuer", TokenIssuer)
# A form holds a user name, a password, scopes and a refresh token: a few KiB at most.
_MAX_FORM = 64 * 1024
# RFC 6749 5.1: token responses must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _BadRequest(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


async def token(request: web.Request) -> web.StreamResponse:
    issuer = request.app[ISSUER]
    try:
        if request.method == "POST":
            return await _oauth(request, issuer)
        return await _basic(request, issuer)
    except _BadRequest as e:
        return web.json_response({"error": e.error, "error_description": e.description}, status=400,
                                 headers=_NO_STORE)


def _unauthorized(issuer: TokenIssuer, detail: str) -> web.Response:
    status, body = render(RegistryError(ErrorCode.UNAUTHORIZED, detail))
    headers = {"WWW-Authenticate": f'Basic realm="{issuer.config.issuer}"', **_NO_STORE}
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _check_service(issuer: TokenIssuer, service: str | None) -> None:
    if service is not None and service != issuer.config.service:
        raise _BadRequest("invalid_request", f"unknown service {service[:100]!r}")


def _scopes(values: list[str]) -> list[str]:
    return [scope for value in values for scope in value.split()]


def _answer(body: dict) -> web.Response:
    return web.json_response(body, headers=_NO_STORE)


async def _basic(request: web.Request, issuer: TokenIssuer) -> web.StreamResponse:
    query = request.query
    _check_service(issuer, query.get("service"))
    scopes = _scopes(query.getall("scope", []))
    user: str | None = None
    if "Authorization" in request.headers:
        credentials = basic_credentials(request)
        if credentials is None or not await issuer.htpasswd.verify(*credentials):
            return _unauthorized(issuer, "wrong user name or password")
        user = credentials[0]
    elif not issuer.anonymous_allowed:
        return _unauthorized(issuer, "log in first: no rule allows anonymous access")
    offline = query.get("offline_token", "").lower() == "true"
    return _answer(issuer.issue(user, scopes, offline=offline).as_dict())


async def _form(request: web.Request) -> dict[str, list[str]]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise _BadRequest("invalid_request", "expected an application/x-www-form-urlencoded body")
    data = bytearray()
    while chunk := await request.content.readany():
        data += chunk
        if len(data) > _MAX_FORM:
            raise _BadRequest("invalid_request", "request body too large")
    try:
        return parse_qs(data.decode(), strict_parsing=False)
    except UnicodeDecodeError:
        raise _BadRequest("invalid_request", "the form is not UTF-8") from None


def _one(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key)
    if not values or not values[0]:
        raise _BadRequest("invalid_request", f"missing {key}")
    return values[0]


async def _oauth(request: web.Request, issuer: TokenIssuer) -> web.StreamResponse:
    form = await _form(request)
    _check_service(issuer, form.get("service", [None])[0])
    scopes = _scopes(form.get("scope", []))
    offline = form.get("access_type", [""])[0] == "offline"
    grant_type = _one(form, "grant_type")
    if grant_type == "password":
        user = _one(form, "username")
        if not await issuer.htpasswd.verify(user, _one(form, "password")):
            return _unauthorized(issuer, "wrong user name or password")
    elif grant_type == "refresh_token":
        found = issuer.refresh_user(_one(form, "refresh_token"))
        if found is None:
            return _unauthorized(issuer, "invalid or revoked refresh token: log in again")
        user = found
        offline = False  # the client keeps the refresh token it has
    else:
        raise _BadRequest("unsupported_grant_type", f"grant_type {grant_type[:50]!r} is not supported")
    return _answer(issuer.issue(user, scopes, offline=offline).as_dict())
