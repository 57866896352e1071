"""skopeo against ``regctl serve`` with token authentication and its own token service, over TLS verified with
``--cert-dir`` (a directory holding only the test CA; nothing in /etc/docker/certs.d), logging in with
``--creds``.

The rules are those of ``e2e/test_token_docker.py``: every user owns ``{user}/*``; alice may also push to
``public/*``; the group ``readers`` (bob) may pull ``public/*``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.images import read_dir_image
from helpers.secure import TlsFiles, TokenSetup, make_tls_files, output, write_htpasswd
from helpers.servers import RegistryFactory, RegistryProcess
from helpers.tools import Skopeo, describe

pytestmark = pytest.mark.regctl

USERS = {"alice": "alice-Sk-1", "bob": "bob-Sk-2"}
RULES = [
    {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
    {"subjects": ["alice"], "repositories": ["public/*"], "actions": ["pull", "push"]},
    {"subjects": ["@readers"], "repositories": ["public/*"], "actions": ["pull"]},
]
GROUPS = {"readers": ["bob"]}
HOST = "localhost"  # resolves to 127.0.0.1; skopeo verifies TLS there too (unlike dockerd)


@dataclass
class Setup:
    server: RegistryProcess
    tls: TlsFiles
    cert_dir: Path
    empty_dir: Path

    def ref(self, repo: str, tag: str = "1") -> str:
        return f"docker://{HOST}:{self.server.port}/{repo}:{tag}"


@pytest.fixture(scope="module")
def setup(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    base = tmp_path_factory.mktemp("token-skopeo")
    tls = make_tls_files(base / "tls", (HOST, "127.0.0.1"))
    token = TokenSetup(base, HOST, write_htpasswd(base / "htpasswd", USERS), RULES, GROUPS)
    server = registry_factory.start("regctl", extra=lambda proc: {"http": {"tls": tls.server_tls()},
                                                                  **token.extra(proc)})
    cert_dir = base / "certs"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(tls.ca_pem)
    empty = base / "empty-certs"
    empty.mkdir()
    return Setup(server, tls, cert_dir, empty)


def push(skopeo: Skopeo, setup: Setup, src: str, ref: str, user: str, check: bool = True):  # type: ignore[no-untyped-def]
    return skopeo("copy", "--dest-cert-dir", str(setup.cert_dir), "--dest-creds", f"{user}:{USERS[user]}",
                  src, ref, check=check)


def denied(result) -> None:  # type: ignore[no-untyped-def]
    """Refused for lack of access: skopeo prints the error's "denied", or "403 (Forbidden)" where the refused
    request was a HEAD (no body to read a message from)."""
    text = output(result)
    assert result.returncode != 0, f"expected access to be denied:\n{describe(result)}"
    assert "denied" in text or "403 (Forbidden)" in text, f"expected a denial in skopeo's message:\n{describe(result)}"


def test_skopeo_with_creds_follows_the_rules(setup, skopeo, sample_images, tmp_path):
    alice_ref, public_ref = setup.ref("alice/app"), setup.ref("public/base")
    push(skopeo, setup, sample_images.oci_ref("oci"), alice_ref, "alice")
    push(skopeo, setup, sample_images.oci_ref("oci-other"), public_ref, "alice")

    # bob may not write to alice/* nor public/*, nor read alice/*.
    denied(push(skopeo, setup, sample_images.oci_ref("oci-other"), setup.ref("alice/app", "bob"), "bob",
                check=False))
    denied(push(skopeo, setup, sample_images.oci_ref("oci"), setup.ref("public/base", "bob"), "bob", check=False))
    denied(skopeo("inspect", "--cert-dir", str(setup.cert_dir), "--creds", f"bob:{USERS['bob']}", alice_ref,
                  check=False))

    # bob may read public/*: the very bytes alice pushed.
    out = tmp_path / "public-base"
    skopeo("copy", "--src-cert-dir", str(setup.cert_dir), "--src-creds", f"bob:{USERS['bob']}", public_ref,
           f"dir:{out}")
    manifest, blobs = read_dir_image(out)
    assert manifest == sample_images.oci_other.manifest
    assert blobs == sample_images.oci_other.blobs
    tags = skopeo("list-tags", "--cert-dir", str(setup.cert_dir), "--creds", f"bob:{USERS['bob']}",
                  f"docker://{HOST}:{setup.server.port}/public/base")
    assert json.loads(tags.stdout)["Tags"] == ["1"]

    # alice's tag is still her image; bob's attempts left no tag behind.
    inspect = skopeo("inspect", "--raw", "--cert-dir", str(setup.cert_dir), "--creds", f"alice:{USERS['alice']}",
                     alice_ref)
    assert inspect.stdout == sample_images.oci.manifest
    for ref in (setup.ref("alice/app", "bob"), setup.ref("public/base", "bob")):
        missing = skopeo("inspect", "--cert-dir", str(setup.cert_dir), "--creds", f"alice:{USERS['alice']}", ref,
                         check=False)
        assert missing.returncode != 0 and "manifest unknown" in output(missing), describe(missing)


def test_skopeo_wrong_password_and_untrusted_certificate(setup, skopeo, sample_images):
    ref = setup.ref("alice/refused")
    wrong = skopeo("copy", "--dest-cert-dir", str(setup.cert_dir), "--dest-creds", "alice:wrong-password",
                   sample_images.oci_ref("oci"), ref, check=False)
    assert wrong.returncode != 0, describe(wrong)
    assert "unauthorized" in output(wrong).lower(), describe(wrong)

    untrusted = skopeo("copy", "--dest-cert-dir", str(setup.empty_dir), "--dest-creds",
                       f"alice:{USERS['alice']}", sample_images.oci_ref("oci"), ref, check=False)
    assert untrusted.returncode != 0, describe(untrusted)
    assert "x509: certificate signed by unknown authority" in output(untrusted), describe(untrusted)

    missing = skopeo("inspect", "--cert-dir", str(setup.cert_dir), "--creds", f"alice:{USERS['alice']}", ref,
                     check=False)
    assert missing.returncode != 0 and "manifest unknown" in output(missing), describe(missing)
