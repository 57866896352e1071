"""Manifest media types and validation (OCI image-spec, Docker Image Manifest V2 Schema 2).

``parse`` turns pushed bytes into a ``Manifest``: its media type, the blobs and child manifests it
references (which must exist before the push is accepted), its ``subject`` and artifact type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.reference import Digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
SUPPORTED = IMAGE_TYPES | INDEX_TYPES
# Layers clients fetch from elsewhere (``urls``) or may not redistribute need not be in the registry.
_FOREIGN_LAYERS = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Manifest:
    """A stored or pushed manifest. ``data`` is exactly what was pushed and is served byte for byte."""

    digest: Digest
    media_type: str
    data: bytes
    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def _invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, detail, message=f"manifest invalid: {message}")


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _invalid(f"{where} is not a descriptor")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType is missing")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest is missing")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except RegistryError as e:
        raise _invalid(f"{where}.digest: {e.message}", {"digest": digest}) from None
    return Descriptor(media_type, parsed, size, raw)


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    ct = (content_type or "").split(";")[0].strip().lower() or None
    if declared and ct and ct in SUPPORTED and declared != ct:
        raise _invalid(f"mediaType {declared!r} does not match Content-Type {ct!r}")
    media_type = declared or (ct if ct in SUPPORTED else None)
    if media_type is None:
        # OCI allows omitting mediaType; tell an index from an image by its fields.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in SUPPORTED:
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    return media_type


def parse(data: bytes, digest: Digest, content_type: str | None) -> Manifest:
    """Validate a pushed manifest; raises MANIFEST_INVALID (or MANIFEST_TOO_BIG) with a clear detail."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise RegistryError(ErrorCode.MANIFEST_TOO_BIG, {"size": len(data), "limit": MAX_MANIFEST_BYTES})
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _invalid(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise _invalid("not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    media_type = _media_type(doc, content_type)
    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    artifact_type = doc.get("artifactType")
    if media_type in IMAGE_TYPES:
        if "manifests" in doc:
            raise _invalid("an image manifest has no 'manifests' field")
        config = _descriptor(doc.get("config"), "config")
        blobs.append(config)
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        for i, raw in enumerate(layers):
            layer = _descriptor(raw, f"layers[{i}]")
            if layer.media_type not in _FOREIGN_LAYERS and not raw.get("urls"):
                blobs.append(layer)
        if artifact_type is None and config.media_type != OCI_EMPTY_CONFIG and media_type == OCI_MANIFEST:
            artifact_type = config.media_type
    else:
        if "layers" in doc or "config" in doc:
            raise _invalid("an index has no 'layers' or 'config' field")
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("manifests must be a list")
        children = [_descriptor(raw, f"manifests[{i}]") for i, raw in enumerate(entries)]
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise _invalid("annotations must be an object")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    return Manifest(digest, media_type, data, tuple(blobs), tuple(children), subject, artifact_type,
                    annotations)


def load(data: bytes, digest: Digest) -> Manifest:
    """A manifest read back from storage: trusted, but parsed leniently (Distribution may have written it)."""
    try:
        return parse(data, digest, None)
    except RegistryError:
        try:
            doc = json.loads(data)
            media_type = doc.get("mediaType") if isinstance(doc, dict) else None
        except ValueError:
            media_type = None
        return Manifest(digest, media_type if isinstance(media_type, str) else OCI_MANIFEST, data)
