"""skopeo (containers/image) against access-controlled registries over verified TLS on 127.0.0.1.

- htpasswd: the right credentials push and pull (blobs through TLS), wrong or none are refused, and an unknown
  CA is refused.
- tokens from regctl's own token service: alice may push to alice/*, bob may not (and may push to bob/*).
- the same token service feeding CNCF Distribution 2.8, which verifies the tokens with its rootcertbundle.

Assertions are skopeo's exit code, its message and the digest it reads back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.certs import cert_pem, issue, key_pem, make_ca, self_signed, signing_key
from helpers.images import read_dir_image
from helpers.secure_servers import ServerSet
from helpers.servers import free_port
from helpers.tools import Skopeo, require_tool

from regctl.registry.auth.htpasswd import hash_password

SERVICE, ISSUER = "registry.test", "regctl-test"


@dataclass(frozen=True)
class Files:
    tls: dict[str, str]
    cert_dir: Path  # ca.crt, what skopeo's --cert-dir wants
    empty_dir: Path
    htpasswd: Path
    signing_key: Path
    bundle: Path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = make_ca()
    cert, key = tmp_path / "domain.crt", tmp_path / "domain.key"
    issue(ca, "registry").write(cert, key, chain=cert_pem(ca.cert))
    cert_dir, empty_dir = tmp_path / "certs.d", tmp_path / "empty"
    cert_dir.mkdir()
    empty_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(cert_pem(ca.cert))
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{hash_password('s3cret', 5)}\nbob:{hash_password('pyp4ss', 5)}\n")
    signer = signing_key()
    (tmp_path / "token.key").write_bytes(key_pem(signer))
    (tmp_path / "token.pem").write_bytes(cert_pem(self_signed(signer)))
    return Files({"certificate": str(cert), "key": str(key)}, cert_dir, empty_dir, htpasswd,
                 tmp_path / "token.key", tmp_path / "token.pem")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerSet]:
    started = ServerSet(tmp_path / "servers")
    yield started
    started.stop_all()


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    authfile = tmp_path / "auth.json"
    authfile.write_text("{}")
    return Skopeo(str(authfile))


def copy(skopeo: Skopeo, source: str, dest: str, creds: str, *tls: str) -> tuple[int, str]:
    result = skopeo("copy", *tls, f"--dest-creds={creds}", source, dest, check=False)
    return result.returncode, result.stderr.decode(errors="replace")


def inspect(skopeo: Skopeo, ref: str, *args: str) -> tuple[int, str]:
    result = skopeo("inspect", "--raw", *args, ref, check=False)
    return result.returncode, (result.stdout if result.returncode == 0 else result.stderr).decode(errors="replace")


def token_server(files: Files, port: int) -> dict:
    return {
        "issuer": ISSUER, "service": SERVICE, "key": str(files.signing_key), "htpasswd": str(files.htpasswd),
        "rules": [{"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]}],
    }


def test_htpasswd_over_verified_tls(servers, files, skopeo, sample_images, tmp_path: Path) -> None:
    server = servers.start("regctl", {"http": {"tls": files.tls},
                                      "auth": {"htpasswd": {"realm": "Registry Realm", "path": str(files.htpasswd)}}})
    ref = f"docker://{server.addr}/alice/app:1"
    verified = f"--cert-dir={files.cert_dir}"
    assert copy(skopeo, sample_images.oci_ref(), ref, "alice:s3cret", f"--dest-cert-dir={files.cert_dir}")[0] == 0

    code, manifest = inspect(skopeo, ref, verified, "--creds=alice:s3cret")
    assert code == 0
    assert manifest.encode() == sample_images.oci.manifest
    # Blobs come back byte for byte through TLS (not sent around it by sendfile).
    skopeo("copy", f"--src-cert-dir={files.cert_dir}", "--src-creds=alice:s3cret", ref, f"dir:{tmp_path / 'pulled'}")
    assert read_dir_image(tmp_path / "pulled") == (sample_images.oci.manifest, sample_images.oci.blobs)

    code, message = inspect(skopeo, ref, verified, "--creds=alice:wrong")
    assert code != 0
    assert "unauthorized: authentication required" in message
    code, message = inspect(skopeo, ref, verified)
    assert code != 0
    assert "unauthorized: authentication required" in message  # what skopeo prints for Distribution too
    code, message = inspect(skopeo, ref, f"--cert-dir={files.empty_dir}", "--creds=alice:s3cret")
    assert code != 0
    assert "x509: certificate signed by unknown authority" in message


def test_tokens_from_regctl(servers, files, skopeo, sample_images) -> None:
    port = free_port()
    config = {
        "http": {"tls": files.tls},
        "auth": {"token": {"realm": f"https://127.0.0.1:{port}/auth/token", "service": SERVICE, "issuer": ISSUER}},
        "tokenserver": token_server(files, port),
    }
    server = servers.start("regctl", config, port=port, workers=2)
    tls = f"--dest-cert-dir={files.cert_dir}"
    verified = f"--cert-dir={files.cert_dir}"

    assert copy(skopeo, sample_images.oci_ref(), f"docker://{server.addr}/alice/app:1", "alice:s3cret", tls)[0] == 0
    code, manifest = inspect(skopeo, f"docker://{server.addr}/alice/app:1", verified, "--creds=alice:s3cret")
    assert (code, manifest.encode()) == (0, sample_images.oci.manifest)
    tags = skopeo("list-tags", verified, "--creds=alice:s3cret", f"docker://{server.addr}/alice/app")
    assert json.loads(tags.stdout)["Tags"] == ["1"]

    code, message = copy(skopeo, sample_images.oci_ref(), f"docker://{server.addr}/alice/app:2", "bob:pyp4ss", tls)
    assert code != 0
    assert "403 (Forbidden)" in message
    code, message = inspect(skopeo, f"docker://{server.addr}/alice/app:1", verified, "--creds=bob:pyp4ss")
    assert code != 0
    assert "denied: requested access to the resource is denied" in message
    assert copy(skopeo, sample_images.oci_ref(), f"docker://{server.addr}/bob/app:1", "bob:pyp4ss", tls)[0] == 0

    code, message = inspect(skopeo, f"docker://{server.addr}/alice/app:1", verified, "--creds=alice:wrong")
    assert code != 0
    assert "unable to retrieve auth token: invalid username/password" in message


def test_distribution_accepts_regctl_tokens(servers, files, skopeo, sample_images) -> None:
    require_tool("docker-registry")
    port = free_port()
    servers.start("regctl", {"http": {"tls": files.tls}, "tokenserver": token_server(files, port)}, port=port)
    realm = f"https://127.0.0.1:{port}/auth/token"
    distribution = servers.start("distribution", {"auth": {"token": {
        "realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(files.bundle)}}})
    # Distribution here speaks plain HTTP; the token realm is regctl's HTTPS, which skopeo then does not verify.
    plain = "--dest-tls-verify=false"
    ref = f"docker://{distribution.addr}/alice/app:1"
    assert copy(skopeo, sample_images.oci_ref(), ref, "alice:s3cret", plain) == (0, "")
    code, manifest = inspect(skopeo, ref, "--tls-verify=false", "--creds=alice:s3cret")
    assert (code, manifest.encode()) == (0, sample_images.oci.manifest)
    code, message = copy(skopeo, sample_images.oci_ref(), f"docker://{distribution.addr}/alice/app:2", "bob:pyp4ss",
                         plain)
    assert code != 0
    assert "denied: requested access to the resource is denied" in message
