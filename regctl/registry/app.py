"""``create_app(config)``: the composition root of the server.

One catch-all route feeds ``dispatch``, which does for every API request what Distribution's
``app.dispatcher`` does: match the route, check the repository name, run the handler and render any
``RegistryError`` as the spec's JSON envelope. ``_add_headers`` puts the API version header (and the
configured ``http.headers``) on every response under ``/v2/``, including errors raised by aiohttp itself.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from regctl.config.server import ServerConfig
from regctl.registry import routes
from regctl.registry.errors import ErrorCode, RegistryError, render
from regctl.registry.handlers.base import Context, Registry
from regctl.registry.reference import check_name
from regctl.registry.storage import factory
from regctl.registry.storage.driver import StorageDriver
from regctl.registry.storage.uploads import ClientGone

log = logging.getLogger("regctl.registry")

REGISTRY = web.AppKey("registry", Registry)
_API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
_UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")


def create_app(config: ServerConfig, driver: StorageDriver | None = None) -> web.Application:
    if driver is None:
        driver = factory.create(config.storage.driver, config.storage.parameters)
    # Bodies are streamed by the handlers; aiohttp's own limit would only get in the way of blob uploads.
    app = web.Application(client_max_size=0)
    app[REGISTRY] = Registry.over(config, driver)
    app.router.add_route("GET", "/", _root)
    app.router.add_route("*", r"/v2{tail:.*}", dispatch)
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


async def dispatch(request: web.Request) -> web.StreamResponse:
    path = request.raw_path.split("?", 1)[0]
    try:
        found = routes.match(path)
        if found is None:
            raise RegistryError(ErrorCode.NOT_FOUND, {"path": path[:200]})
        route, m = found
        handler = route.methods.get(request.method)
        if handler is None:
            raise RegistryError(ErrorCode.METHOD_UNKNOWN, {"method": request.method, "route": route.name},
                                headers={"Allow": ", ".join(route.methods)})
        params = m.groupdict()
        ctx = Context(request.app[REGISTRY], request, check_name(params["name"]) if "name" in params else "",
                      params.get("ref") or "")
        if route.name == "upload" and not _UPLOAD_ID_RE.fullmatch(ctx.reference):
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"uuid": ctx.reference[:100]})
        return await handler(ctx)
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
