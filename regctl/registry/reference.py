"""Grammar of repository names, tags and digests (OCI Distribution Spec, "Pulling manifests").

Everything that reaches storage passes one of these checks first, which is also what keeps path
traversal (``..``, ``%2e%2e``, absolute paths) out of the storage layer: none of them can match.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from regctl.registry.errors import ErrorCode, RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# Distribution's limit; the spec leaves it to registries but clients assume at most 255.
NAME_MAX = 255

# Registered algorithms (OCI image-spec "Digests"): name -> (hashlib constructor name, hex length).
ALGORITHMS: dict[str, tuple[str, int]] = {"sha256": ("sha256", 64), "sha512": ("sha512", 128)}
_HEX_RE = re.compile(r"[a-f0-9]+")


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise RegistryError(ErrorCode.NAME_INVALID, {"name": name[:300]})
    return name


def is_tag(reference: str) -> bool:
    return TAG_RE.fullmatch(reference) is not None


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(ErrorCode.TAG_INVALID, {"tag": tag[:300]})
    return tag


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(ALGORITHMS[self.algorithm][0])

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``alg:hex``; raises DIGEST_INVALID for bad grammar or an unsupported algorithm."""
        m = DIGEST_RE.fullmatch(text)
        if not m:
            raise RegistryError(ErrorCode.DIGEST_INVALID, {"digest": text[:300]}, message="invalid digest")
        algorithm, encoded = m.groups()
        spec = ALGORITHMS.get(algorithm)
        if spec is None:
            raise RegistryError(ErrorCode.DIGEST_INVALID, {"digest": text[:300]},
                                message=f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != spec[1] or not _HEX_RE.fullmatch(encoded):
            raise RegistryError(ErrorCode.DIGEST_INVALID, {"digest": text[:300]}, message="invalid digest")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(ALGORITHMS[algorithm][0], data).hexdigest())
