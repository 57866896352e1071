"""The route table: every ``/v2/`` endpoint, named, with its handler per method.

Paths are matched on the raw (still percent-encoded) path, so an encoded ``..`` or slash can never turn
into a different repository name: it fails the name grammar and the client gets NAME_INVALID.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from regctl.registry.handlers import blobs, listing, manifests, uploads
from regctl.registry.handlers.base import Context, json_response

Handler = Callable[[Context], Awaitable[web.StreamResponse]]


async def _base(ctx: Context) -> web.StreamResponse:
    return json_response({})


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: dict[str, Handler]


_NAME = r"(?P<name>.+?)"
ROUTES: tuple[Route, ...] = (
    Route("base", re.compile(r"/v2/?"), {"GET": _base, "HEAD": _base}),
    Route("catalog", re.compile(r"/v2/_catalog"), {"GET": listing.catalog}),
    Route("tags", re.compile(rf"/v2/{_NAME}/tags/list"), {"GET": listing.list_tags}),
    Route("manifest", re.compile(rf"/v2/{_NAME}/manifests/(?P<ref>[^/]+)"), {
        "GET": manifests.get_manifest, "HEAD": manifests.get_manifest,
        "PUT": manifests.put_manifest, "DELETE": manifests.delete_manifest,
    }),
    Route("upload-start", re.compile(rf"/v2/{_NAME}/blobs/uploads/?"), {"POST": uploads.start_upload}),
    Route("upload", re.compile(rf"/v2/{_NAME}/blobs/uploads/(?P<ref>[^/]+)"), {
        "GET": uploads.upload_status, "PATCH": uploads.patch_upload,
        "PUT": uploads.finish_upload, "DELETE": uploads.cancel_upload,
    }),
    Route("blob", re.compile(rf"/v2/{_NAME}/blobs/(?P<ref>[^/]+)"), {
        "GET": blobs.get_blob, "HEAD": blobs.head_blob, "DELETE": blobs.delete_blob,
    }),
    Route("referrers", re.compile(rf"/v2/{_NAME}/referrers/(?P<ref>[^/]+)"), {"GET": listing.referrers}),
)


def match(path: str) -> tuple[Route, re.Match[str]] | None:
    for route in ROUTES:
        m = route.pattern.fullmatch(path)
        if m is not None:
            return route, m
    return None
