"""The server's configuration: CNCF Distribution's ``config.yml`` (``version: 0.1``), validated.

Only what regctl serves is modelled; ``load.py`` reads YAML, applies ``REGISTRY_*`` environment overrides
and reports keys that Distribution knows but regctl does not serve yet.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_ADDR = ":5000"
DEFAULT_ROOT = "/var/lib/registry"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AccessLog(_Strict):
    disabled: bool = False


class Log(_Strict):
    level: Literal["error", "warn", "info", "debug"] = "info"
    formatter: Literal["text", "json", "logstash"] = "text"
    # Static fields added to every log record (Distribution: ``log.fields``), e.g. {"service": "registry"}.
    fields: dict[str, Any] = Field(default_factory=dict)
    accesslog: AccessLog = Field(default_factory=AccessLog)


class TLS(_Strict):
    """``http.tls``: serve HTTPS. Files are re-read on SIGHUP and when they change (``registry.tls``)."""

    # PEM: the certificate first, then its intermediates (the seed's `cat domain.crt intermediate.pem`).
    certificate: str
    key: str
    # PEM files of CAs that sign client certificates; any given makes a client certificate mandatory.
    clientcas: list[str] = Field(default_factory=list)
    minimumtls: Literal["tls1.2", "tls1.3"] = "tls1.2"


class HTTP(_Strict):
    # Go's net.Listen form: ":5000" (every interface), "127.0.0.1:5000", "[::1]:5000"; see parse_addr.
    addr: str = DEFAULT_ADDR
    # Base URL for Location headers, e.g. https://registry.example.com; default: from the request.
    host: str | None = None
    # Signs upload state tokens; instances behind one load balancer must share it.
    secret: str | None = None
    relativeurls: bool = False
    # Added to every response; Distribution's stock config sets X-Content-Type-Options: [nosniff].
    headers: dict[str, list[str]] = Field(default_factory=dict)
    tls: TLS | None = None


class Delete(_Strict):
    enabled: bool = False


class Storage(_Strict):
    """Distribution's one-key-per-driver map, flattened: ``{filesystem: {...}}`` → driver + parameters."""

    driver: str = "filesystem"
    parameters: dict[str, Any] = Field(default_factory=lambda: {"rootdirectory": DEFAULT_ROOT})
    delete: Delete = Field(default_factory=Delete)


class HtpasswdAuth(_Strict):
    realm: str
    path: str


class TokenAuth(_Strict):
    """Bearer tokens from a token service (Docker's token authentication specification)."""

    realm: str  # the token service URL clients are sent to
    service: str  # the tokens' audience
    issuer: str
    # PEM certificates or public keys of the token signers; None: trust the built-in token service's key.
    rootcertbundle: str | None = None


class Auth(_Strict):
    """At most one backend; neither means every request is allowed (``auth: {none: {}}`` too)."""

    htpasswd: HtpasswdAuth | None = None
    token: TokenAuth | None = None


class TokenRule(_Strict):
    # Names from the htpasswd file, "@group", "*" (every user) or "anonymous" (everyone, even without a login).
    subjects: list[str]
    # Glob patterns (fnmatch: "*" also matches "/"); "{user}" stands for the caller's name.
    repositories: list[str]
    actions: list[Literal["pull", "push", "delete", "*"]]


class TokenServer(_Strict):
    """regctl's own token service (not in Distribution): ``GET``/``POST /auth/token`` in the same server."""

    issuer: str
    service: str
    key: str  # PEM private key that signs tokens: EC P-256/384/521 (ES256/384/512) or RSA (RS256)
    htpasswd: str
    expiry: int = 300  # seconds a token is valid
    rules: list[TokenRule] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)


class Acme(_Strict):
    """regctl's ACME section (not in Distribution): the CA that issues ``http.tls``'s certificate.

    ``httpaddr`` makes every worker serve HTTP-01 tokens from ``challengedir`` (``registry.acme_http``) and
    redirect anything else to HTTPS; ``challenge: tls-alpn-01`` with ``responder: webroot`` makes the workers'
    TLS listener answer TLS-ALPN-01 from ``challengedir`` (``registry.alpn``); ``auto`` makes the server renew
    the certificate by itself (``registry.renewer``). ``regctl cert renew`` reads the same settings.
    """

    directory: str  # the directory URL (letsencrypt and letsencrypt-staging are resolved when loading)
    email: str | None = None
    domains: list[str]
    accountdir: str  # account key and registrations (regctl.tls.accounts)
    # webroot: HTTP-01 token files, served on httpaddr; TLS-ALPN-01 certificates in tls-alpn-01/, presented
    # by the TLS listener of http.addr
    challengedir: str | None = None
    httpaddr: str | None = None  # plain-HTTP listener of every worker, e.g. ":80"
    # The HTTPS port httpaddr redirects to; None: http.addr's. Differs behind a port mapping (a container).
    redirectport: int | None = None
    challenge: Literal["http-01", "tls-alpn-01"] = "http-01"
    # webroot: files in challengedir the workers answer from (HTTP-01 on httpaddr, TLS-ALPN-01 on http.addr's
    # TLS listener); standalone: the renewer listens itself for the time of an order, on httpport (HTTP-01)
    # or tlsport (TLS-ALPN-01), on every interface.
    responder: Literal["webroot", "standalone"] = "standalone"
    # CAs validate on 80 and 443; other ports only behind a port mapping (a container) or for a test CA.
    httpport: int = 80
    tlsport: int = 443
    eabkid: str | None = None
    eabhmackey: str | None = None  # base64url, as the CA hands it out
    cabundle: str | None = None  # PEM of the CA's own HTTPS (a test CA); None: system trust
    renewdays: int | None = None  # None: when a third of the lifetime is left, or the CA's renewal window
    auto: bool = False
    checkinterval: int = 43200  # seconds between checks in auto mode

    @property
    def answers_tls_alpn(self) -> bool:
        """Whether the workers' TLS listener answers TLS-ALPN-01 (from ``challengedir``/tls-alpn-01)."""
        return self.challenge == "tls-alpn-01" and self.responder == "webroot" and self.challengedir is not None


class ServerConfig(_Strict):
    version: str = "0.1"
    log: Log = Field(default_factory=Log)
    http: HTTP = Field(default_factory=HTTP)
    storage: Storage = Field(default_factory=Storage)
    auth: Auth = Field(default_factory=Auth)
    tokenserver: TokenServer | None = None
    acme: Acme | None = None

    def files_read(self) -> list[str]:
        """Every file the server reads after start-up (certificates, keys, password files), for permission checks."""
        paths: list[str] = []
        if self.http.tls is not None:
            paths += [self.http.tls.certificate, self.http.tls.key, *self.http.tls.clientcas]
        if self.auth.htpasswd is not None:
            paths.append(self.auth.htpasswd.path)
        if self.auth.token is not None and self.auth.token.rootcertbundle:
            paths.append(self.auth.token.rootcertbundle)
        if self.tokenserver is not None:
            paths += [self.tokenserver.key, self.tokenserver.htpasswd]
        # The workers answer from challengedir; the renewer (auto) runs before the privilege drop.
        if self.acme is not None and self.acme.challengedir and (self.acme.httpaddr or self.acme.answers_tls_alpn):
            paths.append(self.acme.challengedir)
        return paths


def join_addr(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets (``[::1]:5000``): the inverse of :func:`parse_addr`, as Go's
    ``net.JoinHostPort``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_addr(addr: str) -> tuple[str, int]:
    """Split ``http.addr`` into (host, port) the way Go's ``net.SplitHostPort`` does.

    ``host`` is ``""`` for every interface (``:5000``) and has no brackets (``[::1]:5000`` → ``::1``); a port
    of 0 asks the kernel for a free one. Raises ValueError with an operator-readable reason.
    """
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"missing port in address {addr!r} (expected HOST:PORT, e.g. :5000)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"too many colons in address {addr!r} (write IPv6 hosts in brackets: [::1]:5000)")
    if not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid port {port!r} in address {addr!r} (expected a number from 0 to 65535)")
    return host, int(port)
