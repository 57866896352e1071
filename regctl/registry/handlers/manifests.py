"""Manifests by tag or digest: ``GET``/``HEAD``/``PUT``/``DELETE /v2/<name>/manifests/<reference>``."""

from __future__ import annotations

from aiohttp import web

from regctl.registry import manifest as mf
from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.handlers.base import Context, read_small
from regctl.registry.reference import Digest, check_tag


def _is_digest(reference: str) -> bool:
    return ":" in reference


async def _resolve(ctx: Context) -> Digest:
    if _is_digest(ctx.reference):
        return Digest.parse(ctx.reference)
    check_tag(ctx.reference)
    return await ctx.registry.tags.resolve(ctx.name, ctx.reference)


def _accepted(header: str) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in header.split(",")}


async def _negotiate(ctx: Context, manifest: mf.Manifest) -> mf.Manifest:
    """Serve what the client accepts. With no Accept header, or a wildcard, the stored manifest is served.

    An old client that accepts Docker schema 2 but not lists gets the linux/amd64 image of a list, as
    Distribution does; any other mismatch is MANIFEST_UNKNOWN, since the manifest does not exist in a form
    the client can read.
    """
    header = ctx.request.headers.get("Accept")
    if not header:
        return manifest
    accepted = _accepted(header)
    if manifest.media_type in accepted or "*/*" in accepted or manifest.media_type == mf.DOCKER_MANIFEST:
        return manifest
    if manifest.media_type in mf.INDEX_TYPES and accepted & mf.IMAGE_TYPES:
        for child in manifest.children:
            platform = child.raw.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                picked = await ctx.registry.manifests.get(ctx.name, child.digest)
                if picked.media_type in accepted:
                    return picked
    raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"mediaType": manifest.media_type},
                        message=f"manifest is {manifest.media_type}, which the Accept header does not include")


async def get_manifest(ctx: Context) -> web.StreamResponse:
    digest = await _resolve(ctx)
    manifest = await _negotiate(ctx, await ctx.registry.manifests.get(ctx.name, digest))
    return web.Response(body=manifest.data, headers={
        "Content-Type": manifest.media_type,
        "Docker-Content-Digest": str(manifest.digest),
        "ETag": f'"{manifest.digest}"',
    })


async def put_manifest(ctx: Context) -> web.StreamResponse:
    registry = ctx.registry
    data = await read_small(ctx.request, mf.MAX_MANIFEST_BYTES, ErrorCode.MANIFEST_TOO_BIG)
    if _is_digest(ctx.reference):
        expected = Digest.parse(ctx.reference)
        digest = Digest.of(data, expected.algorithm)
        if digest != expected:
            raise RegistryError(ErrorCode.DIGEST_INVALID, {"expected": str(expected), "actual": str(digest)})
        tag = None
    else:
        tag = check_tag(ctx.reference)
        digest = Digest.of(data)
    manifest = await registry.manifests.put(ctx.name, data, ctx.request.headers.get("Content-Type"), digest)
    if tag is not None:
        await registry.tags.tag(ctx.name, tag, digest)
    headers = {"Location": ctx.url(f"/v2/{ctx.name}/manifests/{digest}"), "Docker-Content-Digest": str(digest)}
    if manifest.subject is not None:
        headers["OCI-Subject"] = str(manifest.subject.digest)
    return web.Response(status=201, headers=headers)


async def delete_manifest(ctx: Context) -> web.StreamResponse:
    registry = ctx.registry
    if not registry.delete_enabled:
        raise RegistryError(ErrorCode.UNSUPPORTED, message="deletes are disabled (storage.delete.enabled)")
    if not _is_digest(ctx.reference):
        # OCI 1.1 "Deleting tags": only the tag goes; the manifest stays reachable by digest.
        await registry.tags.untag(ctx.name, check_tag(ctx.reference))
        return web.Response(status=202)
    digest = Digest.parse(ctx.reference)
    await registry.manifests.delete(ctx.name, digest)
    for tag in await registry.tags.pointing_at(ctx.name, digest):
        await registry.tags.untag(ctx.name, tag)
    return web.Response(status=202)
