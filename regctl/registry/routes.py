"""The route table: every ``/v2/`` endpoint, named, with its handler per method.

Paths are matched on the raw (still percent-encoded) path, so an encoded ``..`` or slash can never turn
into a different repository name: it fails the name grammar and the client gets NAME_INVALID.

Each method also declares the access it needs, with Distribution's semantics (``app.authorized``, token spec
scopes): reading needs ``pull``; writing needs ``pull`` and ``push``; deleting a manifest or blob needs
``delete``; ``/v2/`` only an authenticated caller; the catalog ``registry:catalog:*``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from aiohttp import web

from regctl.registry.auth import Access
from regctl.registry.handlers import blobs, listing, manifests, uploads
from regctl.registry.handlers.base import Context, json_response

Handler = Callable[[Context], Awaitable[web.StreamResponse]]


async def _base(ctx: Context) -> web.StreamResponse:
    return json_response({})


class Method(NamedTuple):
    handler: Handler
    # Actions needed on the route's repository (empty for routes without one).
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: dict[str, Method]
    # Accesses needed whatever the method (the catalog's).
    needs: tuple[Access, ...] = ()

    def accesses(self, method: Method, name: str) -> list[Access]:
        return [*self.needs, *(Access("repository", name, action) for action in method.actions)]


PULL = ("pull",)
# Distribution asks pull with push: a pusher reads back what it pushes (HEAD blob, GET upload status).
PUSH = ("pull", "push")
DELETE = ("delete",)
CATALOG = Access("registry", "catalog", "*")

_NAME = r"(?P<name>.+?)"
ROUTES: tuple[Route, ...] = (
    Route("base", re.compile(r"/v2/?"), {"GET": Method(_base), "HEAD": Method(_base)}),
    Route("catalog", re.compile(r"/v2/_catalog"), {"GET": Method(listing.catalog)}, needs=(CATALOG,)),
    Route("tags", re.compile(rf"/v2/{_NAME}/tags/list"), {"GET": Method(listing.list_tags, PULL)}),
    Route("manifest", re.compile(rf"/v2/{_NAME}/manifests/(?P<ref>[^/]+)"), {
        "GET": Method(manifests.get_manifest, PULL), "HEAD": Method(manifests.get_manifest, PULL),
        "PUT": Method(manifests.put_manifest, PUSH), "DELETE": Method(manifests.delete_manifest, DELETE),
    }),
    Route("upload-start", re.compile(rf"/v2/{_NAME}/blobs/uploads/?"), {"POST": Method(uploads.start_upload, PUSH)}),
    # Cancelling an upload is part of pushing, not a delete (Distribution would ask "delete" by method alone).
    Route("upload", re.compile(rf"/v2/{_NAME}/blobs/uploads/(?P<ref>[^/]+)"), {
        "GET": Method(uploads.upload_status, PUSH), "PATCH": Method(uploads.patch_upload, PUSH),
        "PUT": Method(uploads.finish_upload, PUSH), "DELETE": Method(uploads.cancel_upload, PUSH),
    }),
    Route("blob", re.compile(rf"/v2/{_NAME}/blobs/(?P<ref>[^/]+)"), {
        "GET": Method(blobs.get_blob, PULL), "HEAD": Method(blobs.head_blob, PULL),
        "DELETE": Method(blobs.delete_blob, DELETE),
    }),
    Route("referrers", re.compile(rf"/v2/{_NAME}/referrers/(?P<ref>[^/]+)"), {"GET": Method(listing.referrers, PULL)}),
)


def match(path: str) -> tuple[Route, re.Match[str]] | None:
    for route in ROUTES:
        m = route.pattern.fullmatch(path)
        if m is not None:
            return route, m
    return None
