"""regctl's token service: issues the Bearer tokens that ``token.TokenAuth`` verifies.

It follows Docker's token authentication specification (https://distribution.github.io/distribution/spec/auth/token/):
a client that got a ``Bearer realm=...,service=...,scope=...`` challenge asks the realm for a token, with its
htpasswd credentials (or none), and gets a JWT whose ``access`` claim holds what it asked for and the rules
allow, never more. Users come from an htpasswd file; the rules (``tokenserver.rules``) say which subjects may
do which actions on which repositories:

- subjects: a user name, ``@group`` (``tokenserver.groups``), ``*`` (every user with a login) or ``anonymous``
  (everyone, with or without a login; a token request without credentials is refused unless some rule names
  ``anonymous``);
- repositories: glob patterns (``fnmatch``: ``*`` also matches ``/``), where ``{user}`` is the caller's name;
- actions: ``pull``, ``push``, ``delete`` or ``*`` (all three).

Refresh tokens (``offline_token=true`` in the GET form, ``access_type=offline`` in the OAuth2 POST form, which
``docker login`` stores as its identity token) are JWTs too, for another audience so they never pass as access
tokens, and bound to the user's htpasswd entry: removing the user or changing the password revokes them.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from regctl.config.server import TokenRule, TokenServer
from regctl.errors import ConfigError
from regctl.registry.auth.htpasswd import Htpasswd, HtpasswdError
from regctl.registry.auth.token import key_id
from regctl.registry.reference import NAME_MAX, NAME_RE

ACTIONS = ("pull", "push", "delete")
ANONYMOUS = "anonymous"
EVERY_USER = "*"
REFRESH_LIFETIME = 30 * 24 * 3600
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_MIN_RSA_BITS = 2048

UNREADABLE_HINT = "check the path, and that the user regctl serves as (--run-as) may read the file"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def refresh_audience(service: str) -> str:
    """The ``aud`` of refresh tokens: never equal to ``service``, so TokenAuth refuses them as access tokens."""
    return f"{service}#refresh"


def load_signing_key(path: str, key: str = "tokenserver.key") -> tuple[SigningKey, str]:
    """The private key in the PEM file ``path`` and its JWS algorithm; ConfigError naming ``key`` otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}", hint=UNREADABLE_HINT) from None
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(key, f"{path} is not an unencrypted PEM private key",
                          hint="e.g. openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256") from None
    if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name in _CURVES:
        return private, _CURVES[private.curve.name]
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size >= _MIN_RSA_BITS:
        return private, "RS256"
    raise ConfigError(key, f"{path}: the key must be EC (P-256, P-384, P-521) or RSA of at least {_MIN_RSA_BITS} bits")


def parse_scope(text: str) -> tuple[str, str, list[str]] | None:
    """``repository:alice/app:pull,push`` → ("repository", "alice/app", ["pull", "push"]); None if malformed."""
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        return None
    return kind, name, [a for a in actions.split(",") if a]


def _expand(actions: Iterable[str]) -> set[str]:
    found = set(actions)
    return set(ACTIONS) if "*" in found else found & set(ACTIONS)


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """What the token endpoint answers (Docker's token spec, "Token Response Fields")."""

    token: str
    expires_in: int
    issued_at: float
    refresh_token: str | None = None

    def as_dict(self) -> dict[str, Any]:
        issued = datetime.datetime.fromtimestamp(self.issued_at, datetime.UTC)
        body: dict[str, Any] = {
            "token": self.token,
            # The OAuth2 name, which some clients read instead.
            "access_token": self.token,
            "expires_in": self.expires_in,
            "issued_at": issued.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body


class TokenIssuer:
    def __init__(self, config: TokenServer, key: SigningKey, algorithm: str, htpasswd: Htpasswd,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.htpasswd = htpasswd
        self.algorithm = algorithm
        self._key = key
        self._kid = key_id(self.public_key)
        self._clock = clock
        self.anonymous_allowed = any(ANONYMOUS in rule.subjects for rule in config.rules)

    @classmethod
    def from_config(cls, config: TokenServer) -> TokenIssuer:
        """Read the signing key and the htpasswd file; ConfigError naming the key when one is unusable."""
        key, algorithm = load_signing_key(config.key)
        try:
            htpasswd = Htpasswd(config.htpasswd)
        except HtpasswdError as exc:
            raise ConfigError("tokenserver.htpasswd", exc.message, hint=exc.hint) from None
        return cls(config, key, algorithm, htpasswd)

    @property
    def public_key(self) -> PublicKeyTypes:
        return self._key.public_key()

    # -- rules ----------------------------------------------------------------------------------------------
    def _applies(self, rule: TokenRule, user: str | None) -> bool:
        for subject in rule.subjects:
            if subject == ANONYMOUS:
                return True
            if user is None:
                continue
            if subject == EVERY_USER:
                return True
            if subject.startswith("@"):  # a group, even for a user whose name starts with "@"
                if user in self.config.groups.get(subject[1:], ()):
                    return True
            elif subject == user:
                return True
        return False

    def _patterns(self, rule: TokenRule, user: str | None) -> list[str]:
        if user is None:  # nobody's namespace: {user} patterns do not apply to anonymous callers
            return [p for p in rule.repositories if "{user}" not in p]
        return [p.replace("{user}", glob.escape(user)) for p in rule.repositories]

    def allowed(self, user: str | None, repository: str) -> set[str]:
        """The actions the rules give ``user`` (None: anonymous) on ``repository``."""
        found: set[str] = set()
        for rule in self.config.rules:
            if self._applies(rule, user) and any(fnmatchcase(repository, p) for p in self._patterns(rule, user)):
                found |= _expand(rule.actions)
        return found

    def pull_patterns(self, user: str | None) -> list[str]:
        """Every repository pattern ``user`` may pull: the catalog token carries them so the listing is filtered."""
        patterns: list[str] = []
        for rule in self.config.rules:
            if self._applies(rule, user) and "pull" in _expand(rule.actions):
                patterns += [p for p in self._patterns(rule, user) if p not in patterns]
        return patterns

    def access(self, user: str | None, scopes: Sequence[str]) -> list[dict[str, Any]]:
        """The ``access`` claim for the requested ``scopes``: each request intersected with the rules."""
        entries: list[dict[str, Any]] = []
        for text in scopes:
            scope = parse_scope(text)
            if scope is None:
                continue
            kind, name, requested = scope
            if kind == "registry" and name == "catalog" and "*" in requested:
                entries.append({"type": "registry", "name": "catalog", "actions": ["*"]})
                entries += [{"type": "repository", "name": p, "actions": ["pull"]} for p in self.pull_patterns(user)]
                continue
            if kind != "repository" or len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
                continue
            allowed = self.allowed(user, name)
            if "*" in requested:
                granted = ["*"] if allowed == set(ACTIONS) else [a for a in ACTIONS if a in allowed]
            else:
                granted = list(dict.fromkeys(a for a in requested if a in allowed))
            if granted:
                entries.append({"type": "repository", "name": name, "actions": granted})
        return entries

    # -- tokens ---------------------------------------------------------------------------------------------
    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self._kid})

    def issue(self, user: str | None, scopes: Sequence[str], *, offline: bool = False) -> TokenResponse:
        now = self._clock()
        expiry = self.config.expiry
        claims = {
            "iss": self.config.issuer,
            "sub": user or "",
            "aud": self.config.service,
            "exp": int(now) + expiry,
            "nbf": int(now),
            "iat": int(now),
            "jti": secrets.token_urlsafe(16),
            "access": self.access(user, scopes),
        }
        refresh = self._refresh_token(user, now) if offline and user is not None else None
        return TokenResponse(self._sign(claims), expiry, now, refresh)

    def _binding(self, user: str) -> str | None:
        entry = self.htpasswd.entry(user)
        return None if entry is None else hashlib.sha256(entry).hexdigest()[:32]

    def _refresh_token(self, user: str, now: float) -> str | None:
        binding = self._binding(user)
        if binding is None:
            return None
        return self._sign({
            "iss": self.config.issuer,
            "sub": user,
            "aud": refresh_audience(self.config.service),
            "exp": int(now) + REFRESH_LIFETIME,
            "iat": int(now),
            "jti": secrets.token_urlsafe(16),
            "pwd": binding,
        })

    def refresh_user(self, token: str) -> str | None:
        """The user a refresh token was issued to, if it is ours, unexpired, and the user's entry is unchanged."""
        try:
            # Expiry is checked below against the issuer's clock, the one that set it.
            claims = jwt.decode(token, self.public_key, algorithms=[self.algorithm],
                                audience=refresh_audience(self.config.service), issuer=self.config.issuer,
                                options={"require": ["exp", "sub", "aud", "iss"], "verify_exp": False})
        except jwt.InvalidTokenError:
            return None
        user, binding, expires = claims["sub"], claims.get("pwd"), claims["exp"]
        if not isinstance(user, str) or not isinstance(binding, str) or not isinstance(expires, int):
            return None
        current = self._binding(user)
        if expires <= self._clock() or current is None or not secrets.compare_digest(current, binding):
            return None
        return user
