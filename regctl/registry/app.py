"""``create_app(config)``: the composition root of the server.

One catch-all route feeds ``dispatch``, which does for every API request what Distribution's
``app.dispatcher`` does: match the route, check the repository name, authorize (when ``auth`` is
configured), run the handler and render any ``RegistryError`` as the spec's JSON envelope. ``_add_headers``
puts the API version header (and the configured ``http.headers``) on every response under ``/v2/``,
including errors raised by aiohttp itself. With ``tokenserver`` configured, ``/auth/token`` serves tokens.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from regctl.config.server import ServerConfig
from regctl.registry import routes
from regctl.registry.auth import ANONYMOUS, Access, AccessController, Challenge, backends
from regctl.registry.errors import ErrorCode, RegistryError, render
from regctl.registry.handlers import tokens
from regctl.registry.handlers.base import Context, Registry
from regctl.registry.reference import check_name
from regctl.registry.storage import factory
from regctl.registry.storage.driver import StorageDriver
from regctl.registry.storage.uploads import ClientGone

log = logging.getLogger("regctl.registry")

REGISTRY = web.AppKey("registry", Registry)
ACCESS = web.AppKey("access", AccessController)
_API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
_UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")


def create_app(config: ServerConfig, driver: StorageDriver | None = None) -> web.Application:
    if driver is None:
        driver = factory.create(config.storage.driver, config.storage.parameters)
    # Bodies are streamed by the handlers; aiohttp's own limit would only get in the way of blob uploads.
    app = web.Application(client_max_size=0)
    app[REGISTRY] = Registry.over(config, driver)
    issuer = backends.issuer(config)
    controller = backends.controller(config, issuer)
    if controller is not None:  # absent: dispatch does no access control at all
        app[ACCESS] = controller
    app.router.add_route("GET", "/", _root)
    app.router.add_route("*", r"/v2{tail:.*}", dispatch)
    if issuer is not None:
        app[tokens.ISSUER] = issuer
        app.router.add_route("GET", "/auth/token", tokens.token)
        app.router.add_route("POST", "/auth/token", tokens.token)
    extra = [(k, ", ".join(v)) for k, v in config.http.headers.items()]
    app.on_response_prepare.append(_header_adder(extra))
    return app


async def _root(request: web.Request) -> web.StreamResponse:
    """``GET /`` answers 200 for load-balancer health checks (the seed's advice)."""
    return web.Response(text="")


def _header_adder(extra: list[tuple[str, str]]):
    async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v2"):
            response.headers[_API_VERSION[0]] = _API_VERSION[1]
        for key, value in extra:
            response.headers.setdefault(key, value)

    return _add_headers


def _error_response(error: RegistryError) -> web.Response:
    status, body = render(error)
    return web.Response(status=status, body=body, content_type="application/json", headers=error.headers)


def _refusal(request: web.Request, challenge: Challenge, accesses: list[Access]) -> web.Response:
    """OCI "Error Codes": DENIED (403) for a caller without the scope, else UNAUTHORIZED (401) with the access
    records as detail, shaped as Distribution's (clients such as skopeo print the message only with a detail)."""
    if challenge.denied:
        error = RegistryError(ErrorCode.DENIED, challenge.detail)
    else:
        if challenge.detail is not None:  # why a token was refused: expired, wrong issuer, unknown key...
            log.info("token refused", extra={"path": request.path, "reason": challenge.detail})
        records = [{"Type": a.type, "Class": "", "Name": a.name, "Action": a.action} for a in accesses]
        error = RegistryError(ErrorCode.UNAUTHORIZED, records)
    error.headers["WWW-Authenticate"] = challenge.header
    response = _error_response(error)
    if request.can_read_body:  # an unread upload: close rather than read it for a caller we refused
        response.force_close()
    return response


async def dispatch(request: web.Request) -> web.StreamResponse:
    path = request.raw_path.split("?", 1)[0]
    try:
        found = routes.match(path)
        if found is None:
            raise RegistryError(ErrorCode.NOT_FOUND, {"path": path[:200]})
        route, m = found
        method = route.methods.get(request.method)
        if method is None:
            raise RegistryError(ErrorCode.METHOD_UNKNOWN, {"method": request.method, "route": route.name},
                                headers={"Allow": ", ".join(route.methods)})
        params = m.groupdict()
        name = check_name(params["name"]) if "name" in params else ""
        controller = request.app.get(ACCESS)
        grant = ANONYMOUS
        if controller is not None:
            accesses = route.accesses(method, name)
            try:
                grant = await controller.authorize(request, accesses)
            except Challenge as e:
                return _refusal(request, e, accesses)
        ctx = Context(request.app[REGISTRY], request, name, params.get("ref") or "", grant)
        if route.name == "upload" and not _UPLOAD_ID_RE.fullmatch(ctx.reference):
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"uuid": ctx.reference[:100]})
        return await method.handler(ctx)
    except RegistryError as e:
        return _error_response(e)
    except ClientGone as e:
        log.info("client sent an incomplete body", extra={"path": path, "detail": str(e)})
        response = _error_response(RegistryError(ErrorCode.SIZE_INVALID, {"detail": str(e)}))
        response.force_close()
        return response
    except Exception:
        log.exception("unhandled error", extra={"path": path, "method": request.method})
        return _error_response(RegistryError(ErrorCode.UNKNOWN))
