"""oras-py 0.2.43 against a registry with TLS (verified with the test CA: ``tls_verify=CA``) and access control.

- htpasswd, regctl and Distribution: oras-py needs ``auth_backend="basic"`` there (its default token backend
  takes ``Basic realm="..."`` for a token realm URL: ../shared/PEERS.md 4). The right login pushes and pulls;
  a wrong one is refused with "Unauthorized".
- token, regctl with its own token service: oras-py's default token backend follows the ``Bearer`` challenge to
  the realm with the user's login. alice pushes to ``alice/*``; bob is refused there and reads ``public/*``.

Credentials are given with ``auth.set_basic_auth`` and HOME is the test's own, so nothing is read from or
written to the user's ``~/.docker/config.json``.
"""

from __future__ import annotations

from pathlib import Path

import oras.client
import pytest
from helpers.secure import TlsFiles, TokenSetup, make_tls_files, write_htpasswd
from helpers.servers import RegistryFactory, RegistryProcess

HOST = "localhost"
USERS = {"alice": "alice-Or-1", "bob": "bob-Or-2"}
RULES = [
    {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
    {"subjects": ["alice"], "repositories": ["public/*"], "actions": ["pull", "push"]},
    {"subjects": ["bob"], "repositories": ["public/*"], "actions": ["pull"]},
]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("oras-tls"), (HOST, "127.0.0.1"))


@pytest.fixture(scope="module", params=[pytest.param("regctl", marks=pytest.mark.regctl),
                                        pytest.param("distribution", marks=pytest.mark.distribution)])
def basic_server(request, registry_factory: RegistryFactory, tls: TlsFiles, tmp_path_factory) -> RegistryProcess:
    htpasswd = write_htpasswd(tmp_path_factory.mktemp("oras-auth") / "htpasswd", USERS)
    return registry_factory.start(request.param, extra={
        "http": {"tls": tls.server_tls()}, "auth": {"htpasswd": {"realm": "oras realm", "path": str(htpasswd)}}})


@pytest.fixture(scope="module")
def token_server(registry_factory: RegistryFactory, tls: TlsFiles, tmp_path_factory) -> RegistryProcess:
    base = tmp_path_factory.mktemp("oras-token")
    setup = TokenSetup(base, HOST, write_htpasswd(base / "htpasswd", USERS), RULES, {})
    return registry_factory.start("regctl", extra=lambda proc: {"http": {"tls": tls.server_tls()},
                                                                **setup.extra(proc)})


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def client(server: RegistryProcess, tls: TlsFiles, backend: str, user: str | None,
           password: str | None = None) -> oras.client.OrasClient:
    c = oras.client.OrasClient(hostname=f"{HOST}:{server.port}", tls_verify=str(tls.ca_path), auth_backend=backend)
    c.session.trust_env = False
    if user is not None:
        c.auth.set_basic_auth(user, USERS[user] if password is None else password)
    return c


def artifact(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def push(c: oras.client.OrasClient, target: str, tmp_path: Path, data: bytes):  # type: ignore[no-untyped-def]
    return c.push(target=target, files=[artifact(tmp_path, "notes.txt", data)], disable_path_validation=True,
                  quiet=True)


def test_oras_htpasswd_push_pull_and_wrong_password(basic_server, tls, tmp_path):
    target = f"{HOST}:{basic_server.port}/oras/notes:v1"
    data = b"pushed by oras over TLS with a login\n"
    pushed = push(client(basic_server, tls, "basic", "alice"), target, tmp_path, data)
    assert pushed.status_code == 201, pushed.text

    reader = client(basic_server, tls, "basic", "bob")
    assert reader.get_tags(target) == ["v1"]
    reader.pull(target=target, outdir=str(tmp_path / "out"))
    assert (tmp_path / "out" / "notes.txt").read_bytes() == data

    with pytest.raises(ValueError, match=r"(?i)unauthorized"):
        push(client(basic_server, tls, "basic", "alice", "wrong-password"), f"{HOST}:{basic_server.port}/oras/x:v1",
             tmp_path, b"refused\n")
    with pytest.raises(ValueError, match=r"(?i)unauthorized"):
        client(basic_server, tls, "basic", "alice", "wrong-password").pull(target=target,
                                                                             outdir=str(tmp_path / "refused"))
    assert not (tmp_path / "refused" / "notes.txt").exists()


@pytest.mark.regctl
def test_oras_token_rules(token_server, tls, tmp_path):
    base = f"{HOST}:{token_server.port}"
    alice = client(token_server, tls, "token", "alice")
    bob = client(token_server, tls, "token", "bob")
    assert push(alice, f"{base}/alice/notes:v1", tmp_path, b"alice's notes\n").status_code == 201
    data = b"for everyone to read\n"
    assert push(alice, f"{base}/public/notes:v1", tmp_path, data).status_code == 201

    with pytest.raises(ValueError, match="requested access to the resource is denied"):
        push(bob, f"{base}/alice/notes:bob", tmp_path, b"bob was here\n")
    with pytest.raises(ValueError, match="requested access to the resource is denied"):
        push(bob, f"{base}/public/notes:bob", tmp_path, b"bob was here\n")
    with pytest.raises(ValueError, match="Forbidden"):
        bob.pull(target=f"{base}/alice/notes:v1", outdir=str(tmp_path / "stolen"))
    assert not (tmp_path / "stolen" / "notes.txt").exists()

    bob.pull(target=f"{base}/public/notes:v1", outdir=str(tmp_path / "out"))
    assert (tmp_path / "out" / "notes.txt").read_bytes() == data
    assert alice.get_tags(f"{base}/alice/notes") == ["v1"]
    assert alice.get_tags(f"{base}/public/notes") == ["v1"]
