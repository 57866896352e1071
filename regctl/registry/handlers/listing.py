"""Listings: ``/v2/<name>/tags/list``, ``/v2/_catalog`` and the referrers API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from regctl.registry import manifest as mf
from regctl.registry.auth import Access
from regctl.registry.errors import RegistryError
from regctl.registry.handlers.base import Context, json_response, paginate
from regctl.registry.reference import Digest
from regctl.registry.storage.repositories import all_repositories

# Distribution's default page size for the catalog (``catalog.maxentries``); tags are unpaged unless asked.
CATALOG_PAGE = 1000


async def list_tags(ctx: Context) -> web.StreamResponse:
    tags = await ctx.registry.tags.all(ctx.name)
    page, headers = paginate(ctx, tags, default_n=None, path=f"/v2/{ctx.name}/tags/list")
    return json_response({"name": ctx.name, "tags": page}, headers=headers)


async def catalog(ctx: Context) -> web.StreamResponse:
    """The repositories the caller may pull (with htpasswd or no auth: all), filtered before paging."""
    repositories = [name for name in await all_repositories(ctx.registry.driver)
                    if ctx.grant.may(Access("repository", name, "pull"))]
    page, headers = paginate(ctx, repositories, default_n=CATALOG_PAGE, path="/v2/_catalog")
    return json_response({"repositories": page}, headers=headers)


async def referrers(ctx: Context) -> web.StreamResponse:
    """OCI 1.1 "Listing Referrers": every manifest in the repository whose ``subject`` is the digest.

    The referrers are found by reading the repository's manifests (cached by digest once parsed) rather than
    from a separate index, so manifests pushed by Distribution, which keeps none, are found too.
    """
    subject = Digest.parse(ctx.reference)
    wanted = ctx.request.query.get("artifactType")
    registry = ctx.registry
    entries: list[dict[str, Any]] = []
    for digest in await registry.manifests.revisions(ctx.name):
        try:
            manifest = await registry.manifests.load(digest)
        except RegistryError:
            continue  # a revision whose content is gone (garbage collected)
        if manifest.subject is None or manifest.subject.digest != subject:
            continue
        if wanted is not None and manifest.artifact_type != wanted:
            continue
        entry: dict[str, Any] = {"mediaType": manifest.media_type, "digest": str(digest),
                                 "size": len(manifest.data)}
        if manifest.artifact_type:
            entry["artifactType"] = manifest.artifact_type
        if manifest.annotations:
            entry["annotations"] = manifest.annotations
        entries.append(entry)
    entries.sort(key=lambda e: e["digest"])
    headers = {"OCI-Filters-Applied": "artifactType"} if wanted is not None else None
    return json_response({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries},
                         content_type=mf.OCI_INDEX, headers=headers)
