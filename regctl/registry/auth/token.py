"""Bearer tokens as Docker's token authentication specification describes (Distribution's ``auth.token``).

The registry trusts the public keys of the certificates (or bare public keys) in ``rootcertbundle``. A token
is a JWT signed with one of their private keys (ES256 or RS256; the 384/512 variants are accepted too) whose
``iss`` is the configured issuer, whose ``aud`` is the service, which has not expired, and whose ``access``
claim lists what it allows: ``[{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]``.
The key is picked by the JWT's ``kid``, computed as libtrust does (what Distribution and docker_auth use).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from regctl.errors import RegctlError
from regctl.registry.auth import Access, Challenge, Grant, scopes

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512")
_LEEWAY_SECONDS = 60


def key_id(public_key: PublicKeyTypes) -> str:
    """libtrust's key ID: the first 240 bits of the SHA-256 of the DER public key, base32, in groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def load_bundle(pem: bytes, source: str = "rootcertbundle") -> dict[str, PublicKeyTypes]:
    """Public keys by key ID from PEM certificates and/or PEM public keys."""
    keys: dict[str, PublicKeyTypes] = {}
    for block in _PEM_BLOCK.finditer(pem):
        try:
            if block.group(1) == b"CERTIFICATE":
                key = x509.load_pem_x509_certificate(block.group(0)).public_key()
            elif block.group(1) == b"PUBLIC KEY":
                key = serialization.load_pem_public_key(block.group(0))
            else:
                continue
        except ValueError as exc:
            raise RegctlError(f"{source}: unreadable PEM block: {exc}") from None
        keys[key_id(key)] = key
    if not keys:
        raise RegctlError(f"{source}: no certificate or public key found")
    return keys


@dataclass(frozen=True, slots=True)
class TokenSettings:
    realm: str
    service: str
    issuer: str
    keys: dict[str, PublicKeyTypes]


class TokenAuth:
    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings

    def _challenge(self, accesses: Sequence[Access], error: str | None = None) -> str:
        parts = [f'realm="{self.settings.realm}"', f'service="{self.settings.service}"']
        if accesses:
            parts.append(f'scope="{scopes(accesses)}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims; raises jwt.InvalidTokenError for anything wrong with the token."""
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        candidates = [self.settings.keys[kid]] if kid in self.settings.keys else (
            [] if kid else list(self.settings.keys.values()))
        for key in candidates:
            try:
                return jwt.decode(token, key=key, algorithms=[algorithm], audience=self.settings.service,
                                  issuer=self.settings.issuer, leeway=_LEEWAY_SECONDS,
                                  options={"require": ["exp", "iss", "aud"]})
            except jwt.InvalidSignatureError:
                continue
        raise jwt.InvalidSignatureError("no trusted key verifies the token")

    async def authorize(self, request: web.Request, accesses: Sequence[Access]) -> Grant:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Challenge(self._challenge(accesses))
        try:
            claims = self.claims(token.strip())
        except jwt.InvalidTokenError as exc:
            raise Challenge(self._challenge(accesses, "invalid_token"), detail=str(exc)) from None
        grant = Grant(user=claims.get("sub"), patterns=_patterns(claims.get("access")), everything=False)
        missing = [a for a in accesses if not grant.may(a)]
        if missing:
            raise Challenge(self._challenge(accesses, "insufficient_scope"), denied=True,
                            detail=[a.scope for a in missing])
        return grant


def _patterns(access: Any) -> tuple[tuple[str, str, frozenset[str]], ...]:
    if not isinstance(access, list):
        return ()
    found = []
    for entry in access:
        if isinstance(entry, dict) and isinstance(entry.get("type"), str) and isinstance(entry.get("name"), str):
            actions = entry.get("actions")
            if isinstance(actions, list):
                found.append((entry["type"], entry["name"], frozenset(a for a in actions if isinstance(a, str))))
    return tuple(found)
