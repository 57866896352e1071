"""TLS and access control for the real-client tests: host names mapped in ``/etc/hosts``, CAs the Docker engine
trusts (``/etc/docker/certs.d``), certificates, htpasswd files, token service configurations, and the regctl
commands that make them (``regctl init --domain --tls --auth``, ``cert``, ``adduser``, ``deluser``).

Why a host name mapped to ``::1``: dockerd treats every registry that resolves into 127.0.0.0/8 as insecure
and then never verifies TLS (../shared/PEERS.md 2 and 2b); a name that resolves to ``::1`` gets full
verification, with the CA read from ``/etc/docker/certs.d/HOST:PORT/`` on every request (no daemon restart).

Every line this module adds to ``/etc/hosts`` ends with ``# regctl-tests pid=N``; every directory it adds
under certs.d is removed by :meth:`DockerTrust.cleanup`. Files are rewritten in place (``/etc/hosts`` may be a
bind mount, where a rename fails), and lines left by a test process that no longer runs are swept.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import jwt
import pytest
from cryptography import x509

from helpers.certs import Issued, cert_pem, issue, key_pem, make_ca, self_signed, signing_key
from helpers.registry_api import RegistryClient, basic_auth
from helpers.servers import REPO_ROOT, RegistryProcess
from helpers.tools import describe

HOSTS = Path("/etc/hosts")
CERTS_D = Path("/etc/docker/certs.d")
MARK = "# regctl-tests"
_MARK_RE = re.compile(rf"{re.escape(MARK)} pid=(\d+)\s*$")
_CLI_TIMEOUT = 300


# -- /etc/hosts -------------------------------------------------------------------------------------------
class HostsFile:
    """Adds and removes this process's marked lines in ``/etc/hosts``; never touches any other line."""

    def __init__(self, path: Path = HOSTS) -> None:
        self.path = path
        self.suffix = f"{MARK} pid={os.getpid()}"

    def writable(self) -> bool:
        return os.access(self.path, os.W_OK)

    def _rewrite(self, change) -> None:  # type: ignore[no-untyped-def]
        with self.path.open("r+") as f:
            text = f.read()
            new = change(text)
            if new != text:
                f.seek(0)
                f.write(new)
                f.truncate()

    def add(self, name: str, address: str = "::1") -> None:
        line = f"{address} {name} {self.suffix}\n"

        def append(text: str) -> str:
            if line in text.splitlines(keepends=True):
                return text  # already there (the session fixture is defined once per test module)
            return text + ("" if text.endswith("\n") or not text else "\n") + line

        self._rewrite(append)

    def remove(self, name: str) -> None:
        def drop(text: str) -> str:
            kept = [
                line for line in text.splitlines(keepends=True)
                if not (line.rstrip().endswith(self.suffix) and name in line.split())
            ]
            return "".join(kept)

        self._rewrite(drop)

    def sweep_stale(self) -> list[str]:
        """Remove marked lines whose test process is gone (a session killed before its cleanup ran)."""
        removed: list[str] = []

        def drop(text: str) -> str:
            kept = []
            for line in text.splitlines(keepends=True):
                m = _MARK_RE.search(line)
                if m and not Path(f"/proc/{m.group(1)}").exists():
                    removed.append(line.strip())
                    continue
                kept.append(line)
            return "".join(kept)

        self._rewrite(drop)
        return removed

    def lines(self) -> list[str]:
        return [line for line in self.path.read_text().splitlines() if line.rstrip().endswith(self.suffix)]


@contextlib.contextmanager
def mapped_host(name: str, address: str = "::1"):  # type: ignore[no-untyped-def]
    """``name`` resolves to ``address`` inside the block; the line is removed afterwards, even on failure."""
    hosts = HostsFile()
    if not hosts.writable():
        pytest.fail(f"{hosts.path} is not writable: these tests map a host name to {address} there and must run as"
                    " root (as .ci/run does)", pytrace=False)
    hosts.sweep_stale()
    hosts.add(name, address)
    try:
        yield name
    finally:
        hosts.remove(name)


# -- /etc/docker/certs.d ----------------------------------------------------------------------------------
class DockerTrust:
    """CAs for the Docker engine (and skopeo, which reads the same place) under ``certs.d/HOST:PORT/``.

    ``install`` writes one; ``track`` takes charge of a directory someone else made (``regctl cert trust``).
    ``cleanup`` removes every directory it installed or tracked, and ``certs.d`` itself when it made it.
    """

    def __init__(self, root: Path = CERTS_D) -> None:
        self.root = root
        self._made_root = False
        self._dirs: list[Path] = []

    def path(self, host_port: str) -> Path:
        return self.root / host_port

    def track(self, host_port: str) -> Path:
        if not self.root.exists():
            self._made_root = True
        directory = self.path(host_port)
        if directory not in self._dirs:
            self._dirs.append(directory)
        return directory

    def install(self, host_port: str, ca: bytes) -> Path:
        directory = self.track(host_port)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(ca)
        return directory / "ca.crt"

    def remove(self, host_port: str) -> None:
        shutil.rmtree(self.path(host_port), ignore_errors=True)

    def cleanup(self) -> None:
        for directory in self._dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self._dirs.clear()
        if self._made_root:
            with contextlib.suppress(OSError):
                self.root.rmdir()  # only when empty: another session may use it meanwhile


# -- certificates and users -------------------------------------------------------------------------------
@dataclass
class TlsFiles:
    """A test CA and a server certificate for some host names, as files: ``ca.crt``, ``domain.crt`` (leaf +
    CA, the seed's bundle), ``domain.key`` (mode 0600, as ``openssl req -keyout`` writes it)."""

    directory: Path
    ca: Issued
    leaf: Issued
    hosts: tuple[str, ...]

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert_path(self) -> Path:
        return self.directory / "domain.crt"

    @property
    def key_path(self) -> Path:
        return self.directory / "domain.key"

    @property
    def ca_pem(self) -> bytes:
        return cert_pem(self.ca.cert)

    def renew(self) -> Issued:
        """A new leaf from the same CA, replacing both files atomically (as certbot or an operator's script)."""
        self.leaf = issue(self.ca, self.hosts[0], hosts=self.hosts)
        self._write()
        return self.leaf

    def _write(self) -> None:
        self.leaf.write(self.cert_path, self.key_path, chain=self.ca_pem)
        self.key_path.chmod(0o600)

    def server_tls(self) -> dict[str, str]:
        """``http.tls`` for a server config."""
        return {"certificate": str(self.cert_path), "key": str(self.key_path)}

    def context(self) -> ssl.SSLContext:
        return client_context(self.ca_pem)


def make_tls_files(directory: Path, hosts: Sequence[str]) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca("regctl tests CA")
    files = TlsFiles(directory, ca, issue(ca, hosts[0], hosts=tuple(hosts)), tuple(hosts))
    files.ca_path.write_bytes(files.ca_pem)
    files._write()
    return files


def client_context(*cas: bytes) -> ssl.SSLContext:
    """Trusts the given PEM CAs and nothing else (not the system store, not REQUESTS_CA_BUNDLE)."""
    return ssl.create_default_context(cadata=b"".join(cas).decode())


def htpasswd_line(user: str, password: str) -> str:
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}"


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in users.items()))
    return path


def served_serial(host: str, port: int, context: ssl.SSLContext, server_hostname: str | None = None) -> int:
    """Serial number of the certificate a new TLS connection to ``host:port`` gets (verified by ``context``)."""
    with socket.create_connection((host, port), timeout=10) as sock, context.wrap_socket(
        sock, server_hostname=server_hostname or host
    ) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def tls_get(
    port: int, context: ssl.SSLContext, server_hostname: str, path: str = "/v2/"
) -> tuple[int, bytes, x509.Certificate]:
    """GET ``path`` on a new connection to 127.0.0.1:``port`` verified by ``context`` for ``server_hostname``:
    (status, body, the leaf certificate the server sent)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_hostname}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(response.split()[1]), response.partition(b"\r\n\r\n")[2], x509.load_der_x509_certificate(der)


def file_serial(path: Path) -> int:
    """Serial number of the first certificate in a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0].serial_number


# -- the token service ------------------------------------------------------------------------------------
SERVICE = "regctl-tests"
ISSUER = "regctl-tests-issuer"


@dataclass
class TokenSetup:
    """regctl's built-in token service (``tokenserver``) and ``auth.token`` pointing at it."""

    directory: Path
    host: str  # the name clients use: the realm is https://HOST:PORT/auth/token
    htpasswd: Path
    rules: list[dict[str, Any]]
    groups: dict[str, list[str]]
    service: str = SERVICE
    issuer: str = ISSUER

    def __post_init__(self) -> None:
        self.key = signing_key("ES256")
        self.key_path = self.directory / "token-signing.key"
        self.key_path.write_bytes(key_pem(self.key))
        self.key_path.chmod(0o600)

    def realm(self, server: RegistryProcess) -> str:
        return f"https://{self.host}:{server.port}/auth/token"

    def extra(self, server: RegistryProcess) -> dict[str, Any]:
        """``auth.token`` + ``tokenserver`` for ``server`` (the realm names its port)."""
        return {
            "auth": {"token": {"realm": self.realm(server), "service": self.service, "issuer": self.issuer}},
            "tokenserver": {"key": str(self.key_path), "htpasswd": str(self.htpasswd), "rules": self.rules,
                            "groups": self.groups},
        }

    def forged(self, access: list[dict[str, Any]], subject: str = "admin") -> str:
        """A token with the right issuer, audience and key ID (the trusted key's, as libtrust computes it), signed
        by another key: only the signature check can refuse it."""
        from regctl.registry.auth.token import key_id

        other = signing_key("ES256")
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        return jwt.encode(claims, other, algorithm="ES256", headers={"kid": key_id(self.key.public_key())})

    def root_bundle(self) -> bytes:
        """A certificate of the signing key: what a foreign registry's ``auth.token.rootcertbundle`` holds."""
        return cert_pem(self_signed(self.key))


def fetch_token(
    base_url: str, context: ssl.SSLContext, scopes: Iterable[str], *, user: str | None = None,
    password: str | None = None, service: str = SERVICE,
) -> tuple[int, dict[str, Any], str | None]:
    """GET the token endpoint (Docker's token spec); returns (status, JSON body, WWW-Authenticate)."""
    query = urllib.parse.urlencode([("service", service), *(("scope", s) for s in scopes)])
    headers = basic_auth(user, password or "") if user is not None else {}
    resp = RegistryClient(base_url, context=context).request("GET", f"/auth/token?{query}", headers=headers)
    try:
        body = json.loads(resp.body) if resp.body else {}
    except ValueError:
        body = {"raw": resp.body.decode(errors="replace")}
    return resp.status, body, resp.headers.get("WWW-Authenticate")


_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str | None) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s"`` → ("bearer", {"realm": "r", "service": "s"}); ("", {}) when absent."""
    if not header:
        return "", {}
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(_PARAM_RE.findall(rest))


# -- the regctl CLI ---------------------------------------------------------------------------------------
def cli_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith(("REGISTRY_", "REGCTL_"))}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def regctl_cli(
    *args: str, env: Mapping[str, str], input: bytes | None = None, check: bool = True,
    timeout: float = _CLI_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m regctl ARGS`` with ``input`` on stdin (``--password-stdin``); fails the test on error."""
    result = subprocess.run(
        [sys.executable, "-m", "regctl", *args], env=dict(env), cwd=REPO_ROOT, input=input,
        stdin=None if input is not None else subprocess.DEVNULL, capture_output=True, timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(describe(result), pytrace=False)
    return result


def output(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


class SecureInstance:
    """An instance made by ``regctl init --domain D --port P --tls T --auth A --runtime process``; calling it
    runs ``regctl -C DIR ARGS``. The harness serves it (``RegistryProcess`` with :meth:`server_extra`) on the
    address the test wants, from the files and configuration the CLI wrote."""

    def __init__(self, root: Path, domain: str, port: int, env: Mapping[str, str]) -> None:
        self.root = root
        self.domain = domain
        self.port = port
        self.env = dict(env)

    @classmethod
    def init(cls, root: Path, *, name: str, domain: str, port: int, tls: str, auth: str,
             env: Mapping[str, str], extra_args: Sequence[str] = ()) -> SecureInstance:
        regctl_cli("init", str(root), "--yes", "--name", name, "--domain", domain, "--port", str(port),
                   "--tls", tls, "--auth", auth, "--runtime", "process", "--volume", f"{name}-data",
                   *extra_args, env=env)
        return cls(root, domain, port, env)

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True):  # type: ignore[no-untyped-def]
        return regctl_cli("-C", str(self.root), *args, env=self.env, input=input, check=check)

    @property
    def host_port(self) -> str:
        return f"{self.domain}:{self.port}"

    def adduser(self, user: str, password: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self("adduser", user, "--password-stdin", input=f"{password}\n".encode(), check=check)

    def deluser(self, user: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self("deluser", user, check=check)

    def server_config(self) -> dict[str, Any]:
        """The server configuration ``regctl up`` would run the process runtime with."""
        shown = self("config", "show", "--json", "--runtime", "process", "--show-secrets")
        return json.loads(shown.stdout)["server"]

    def server_extra(self) -> dict[str, Any]:
        """What of the instance's server configuration the harness keeps: TLS, auth, the token service."""
        config = self.server_config()
        extra: dict[str, Any] = {"http": {"tls": config.get("http", {}).get("tls")}}
        for key in ("auth", "tokenserver"):
            if config.get(key):
                extra[key] = config[key]
        assert extra["http"]["tls"], f"regctl config show has no http.tls for --tls selfsigned: {config}"
        return extra

    def cert_status(self) -> dict[str, Any]:
        return json.loads(self("cert", "status", "--json").stdout)

    @property
    def ca_path(self) -> Path:
        """The instance's CA (``regctl cert selfsigned``; the top of the chain after ``cert import``): what
        ``regctl cert trust`` installs."""
        return self.root / "certs" / "ca.crt"

    def ca_pem(self) -> bytes:
        assert self.ca_path.is_file(), f"the instance has no CA at {self.ca_path}: {self.cert_status()}"
        return self.ca_path.read_bytes()

    def edit(self, **changes: Any) -> None:
        """Set top-level sections of regctl.yaml as an operator would (``auth={...}`` merges into auth)."""
        import yaml

        path = self.root / "regctl.yaml"
        data = yaml.safe_load(path.read_text()) or {}
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def certificate_path(self) -> Path:
        return Path(self.server_extra()["http"]["tls"]["certificate"])
