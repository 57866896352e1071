"""Tiny images built by hand, so skopeo and oras tests need no Docker engine.

An image is one gzip layer plus a config and a manifest, either OCI or Docker schema2. The JSON is written
with indentation on purpose: a registry must store and serve the manifest's exact bytes, never re-encode it.
:func:`write_oci_layout` and :func:`write_dir_image` lay images out for skopeo's ``oci:`` and ``dir:``
transports; :func:`read_oci_layout` and :func:`read_dir_image` read back what skopeo wrote.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

_MTIME = 1_700_000_000
_DIR_VERSION = b"Directory Transport Version: 1.1\n"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(obj: object) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def make_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A reproducible ``tar.gz`` holding ``files``; returns (compressed bytes, diff_id of the tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256_digest(tar_bytes)


@dataclass(frozen=True)
class Image:
    """The exact bytes of one image: manifest, config and layers."""

    manifest: bytes
    config: bytes
    layers: tuple[bytes, ...]
    media_type: str
    description: str = field(default="", compare=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every blob the manifest references, by digest (config first)."""
        out = {sha256_digest(self.config): self.config}
        out.update((sha256_digest(layer), layer) for layer in self.layers)
        return out

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}


def make_image(files: dict[str, bytes], *, docker: bool = False, description: str = "") -> Image:
    """An image with one layer holding ``files``: OCI by default, Docker schema2 when ``docker``."""
    layer, diff_id = make_layer(files)
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Labels": {"org.regctl.test": description or "image"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "regctl tests/helpers/images.py"}],
        }
    )
    config_type, layer_type, manifest_type = (
        (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST) if docker else (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST)
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": sha256_digest(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": sha256_digest(layer), "size": len(layer)}],
        }
    )
    return Image(manifest, config, (layer,), manifest_type, description)


def _write_blob(blobs_dir: Path, data: bytes) -> None:
    path = blobs_dir / hashlib.sha256(data).hexdigest()
    if not path.exists():
        path.write_bytes(data)


def write_oci_layout(path: Path, images: dict[str, Image]) -> Path:
    """An OCI image layout at ``path`` with one ``index.json`` entry per tag; use it as ``oci:PATH:TAG``."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    entries = []
    for tag, image in images.items():
        for data in (image.manifest, *image.blobs.values()):
            _write_blob(blobs, data)
        entries.append({**image.descriptor(), "annotations": {"org.opencontainers.image.ref.name": tag}})
    (path / "index.json").write_bytes(_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
    return path


def read_oci_layout(path: Path, tag: str) -> tuple[bytes, dict[str, bytes]]:
    """(manifest bytes, {digest: bytes} of the blobs it references) for ``tag`` in the layout at ``path``."""
    index = json.loads((path / "index.json").read_bytes())
    matches = [
        m for m in index["manifests"] if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
    ]
    assert len(matches) == 1, f"{path}: expected one index.json entry for tag {tag!r}, got {index}"

    def blob(digest: str) -> bytes:
        algo, hexdigest = digest.split(":", 1)
        return (path / "blobs" / algo / hexdigest).read_bytes()

    manifest = blob(matches[0]["digest"])
    return manifest, {d: blob(d) for d in _referenced(manifest)}


def write_dir_image(path: Path, image: Image) -> Path:
    """skopeo's ``dir:`` layout: ``manifest.json``, ``version`` and one file per blob named by its hex."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "version").write_bytes(_DIR_VERSION)
    (path / "manifest.json").write_bytes(image.manifest)
    for data in image.blobs.values():
        _write_blob(path, data)
    return path


def read_dir_image(path: Path) -> tuple[bytes, dict[str, bytes]]:
    """(manifest bytes, {digest: bytes} of the blobs it references) from a ``dir:`` image."""
    manifest = (path / "manifest.json").read_bytes()
    return manifest, {d: (path / d.split(":", 1)[1]).read_bytes() for d in _referenced(manifest)}


def _referenced(manifest: bytes) -> list[str]:
    doc = json.loads(manifest)
    return [doc["config"]["digest"], *(layer["digest"] for layer in doc.get("layers", []))]
