"""Pebble (Let's Encrypt's test CA, Debian ``pebble``) with ``pebble-challtestsrv`` as its DNS, on loopback.

Every name resolves to 127.0.0.1 through challtestsrv, so certificates for made-up domains are issued with
real validation: Pebble fetches HTTP-01 tokens from ``127.0.0.1:<http_port>`` and checks TLS-ALPN-01 on
``127.0.0.1:<tls_port>``; the test picks both ports, so nothing needs root.

Pebble makes a new root on every start: :meth:`Pebble.root_pem` fetches the current one. Its own HTTPS
listener uses a certificate from a CA of ours, :attr:`Pebble.ca_bundle` (what ``AcmeSettings.ca_bundle`` and
``curl --cacert`` take). Both processes log to files in the work dir; a start that fails raises
:class:`PebbleStartError` with the log tails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

from helpers.certs import cert_pem, issue, key_pem, make_ca

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_LOG_TAIL_LINES = 60

# No random sleeps before validation, no random bad nonces, a fresh authz for every order (so each issue
# really answers its challenges).
_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


class PebbleStartError(RuntimeError):
    """pebble or pebble-challtestsrv exited or did not answer in time; the message ends with their logs."""


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP on every interface and for UDP on ``host`` (challtestsrv's DNS listens on both).

    Drawn from below the kernel's ephemeral range: pebble's challenge ports sit unbound for as long as it
    runs (a whole test module), and a port from ``bind(0)`` could be handed to another test's server meanwhile.
    """
    rng = random.SystemRandom()
    floor = _ephemeral_floor()
    while True:
        port = rng.randrange(max(1024, floor - 12000), floor)
        try:
            with socket.create_server(("", port)), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((host, port))
        except OSError:
            continue
        return port


def eab_hmac_key() -> str:
    """A fresh HMAC key, base64url without padding, as CAs hand them out."""
    return base64.urlsafe_b64encode(secrets.token_bytes(48)).rstrip(b"=").decode()


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Pebble:
    """One pebble + challtestsrv pair under ``workdir``; ports are fixed for its lifetime (restarts keep them).

    ``eab``: ``{kid: hmac_key}`` makes Pebble require External Account Binding with those keys.
    ``env``: extra ``PEBBLE_*`` settings (e.g. ``{"PEBBLE_VA_ALWAYS_VALID": "1"}``).
    ``address``: what every name resolves to, 127.0.0.1 or ::1 (where the Docker engine verifies TLS).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        http_port: int | None = None,
        tls_port: int | None = None,
        eab: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        address: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.address = address
        workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
        self.port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port()
        self.challtestsrv_port = free_port()
        self.eab = dict(eab or {})
        self.env = {**_ENV, **(env or {})}
        self.log_path = workdir / "pebble.log"
        self.dns_log_path = workdir / "challtestsrv.log"
        self._pebble: subprocess.Popen[bytes] | None = None
        self._dns: subprocess.Popen[bytes] | None = None

        ca = make_ca("pebble listener test CA")
        listener = issue(ca, "pebble", hosts=("127.0.0.1", "localhost"))
        self.ca_bundle = workdir / "listener-ca.pem"
        self.ca_bundle.write_bytes(cert_pem(ca.cert))
        (workdir / "listener.pem").write_bytes(cert_pem(listener.cert))
        (workdir / "listener.key").write_bytes(key_pem(listener.key))
        self.config_path = workdir / "pebble-config.json"
        config: dict[str, object] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(workdir / "listener.pem"),
            "privateKey": str(workdir / "listener.key"),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(self.eab),
        }
        if self.eab:
            config["externalAccountMACKeys"] = self.eab
        self.config_path.write_text(json.dumps({"pebble": config}, indent=2))
        self._context = ssl.create_default_context(cafile=str(self.ca_bundle))

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    @property
    def running(self) -> bool:
        return self._pebble is not None and self._pebble.poll() is None

    def __repr__(self) -> str:
        return f"<Pebble {self.directory_url} http-01 :{self.http_port} tls-alpn-01 :{self.tls_port}>"

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        if self._dns is None or self._dns.poll() is not None:
            self._dns = self._spawn(
                ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{self.challtestsrv_port}",
                 "-defaultIPv4", "" if ":" in self.address else self.address,
                 "-defaultIPv6", self.address if ":" in self.address else ""],
                self.dns_log_path, {},
            )
            self._wait(lambda: socket.create_connection(("127.0.0.1", self.challtestsrv_port), 1).close(),
                       self._dns, "pebble-challtestsrv", timeout)
        if not self.running:
            self._pebble = self._spawn(
                ["pebble", "-config", str(self.config_path), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                self.log_path, self.env,
            )
            self._wait(lambda: self._get(self.directory_url), self._pebble, "pebble", timeout)
            self._wait(lambda: self._get(f"{self.management_url}/roots/0"), self._pebble, "pebble", timeout)
        return self

    def stop(self) -> None:
        """Stop pebble (the CA is then unreachable); challtestsrv keeps running until :meth:`close`."""
        self._terminate(self._pebble)

    def restart(self) -> Self:
        """A new pebble on the same ports: same directory URL, new root (fetch it with :meth:`root_pem`)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self._terminate(self._pebble)
        self._terminate(self._dns)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def root_pem(self) -> str:
        """The root of the current run (changes on every start), PEM."""
        return self._get(f"{self.management_url}/roots/0").decode()

    def intermediate_pem(self) -> str:
        return self._get(f"{self.management_url}/intermediates/0").decode()

    def write_root(self, path: Path) -> Path:
        path.write_text(self.root_pem())
        return path

    def directory(self) -> dict:
        return json.loads(self._get(self.directory_url))

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines)

    @contextlib.contextmanager
    def resolving_nothing(self) -> Iterator[None]:
        """For the block, names resolve to no address at all (challtestsrv's default answer is emptied)."""
        family = "ipv6" if ":" in self.address else "ipv4"
        self._manage(f"/set-default-{family}", {"ip": ""})
        try:
            yield
        finally:
            self._manage(f"/set-default-{family}", {"ip": self.address})

    def _manage(self, path: str, body: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.challtestsrv_port}{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, context=self._context, timeout=5) as response:
            return response.read()

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
        with log.open("ab") as out:
            return subprocess.Popen(argv, cwd=self.workdir, env={**base, **env}, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait(self, probe: Callable[[], object], proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                self.close()
                raise PebbleStartError(f"{name} exited with {proc.returncode}:\n{self._logs()}")
            try:
                probe()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise PebbleStartError(f"{name} did not answer within {timeout:.0f}s:\n{self._logs()}") from None
                time.sleep(0.05)

    def _logs(self) -> str:
        return (f"--- pebble ({self.log_path}) ---\n{_tail(self.log_path)}\n"
                f"--- pebble-challtestsrv ({self.dns_log_path}) ---\n{_tail(self.dns_log_path)}")

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class PebbleFactory:
    """Starts Pebbles under ``base`` (one sub-directory each) and closes all of them at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Pebble] = []

    def __call__(self, *, http_port: int | None = None, tls_port: int | None = None,
                 eab: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 address: str = "127.0.0.1") -> Pebble:
        pebble = Pebble(self.base / f"pebble-{len(self.started)}", http_port=http_port, tls_port=tls_port,
                        eab=eab, env=env, address=address)
        self.started.append(pebble)
        return pebble.start()

    def close_all(self) -> None:
        for pebble in self.started:
            pebble.close()
