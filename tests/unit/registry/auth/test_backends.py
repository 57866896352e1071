"""What ``auth`` builds at startup, and the errors that name the key when a file is unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from regctl.config.server import ServerConfig
from regctl.errors import ConfigError
from regctl.registry.app import create_app
from regctl.registry.storage.inmemory import InMemoryDriver


def _app(auth: dict) -> None:
    create_app(ServerConfig.model_validate({"auth": auth}), driver=InMemoryDriver())


def test_missing_htpasswd_file(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    with pytest.raises(ConfigError) as caught:
        _app({"htpasswd": {"realm": "r", "path": str(path)}})
    assert str(caught.value) == f"auth.htpasswd.path: cannot read htpasswd file {path}: No such file or directory"


def test_htpasswd_with_other_hashes(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("bob:$apr1$abc$def\n")
    with pytest.raises(ConfigError) as caught:
        _app({"htpasswd": {"realm": "r", "path": str(path)}})
    assert str(caught.value) == f"auth.htpasswd.path: {path}, line 1: the entry for 'bob' is not bcrypt"
    assert caught.value.hint == "only bcrypt entries are accepted: recreate it with `regctl adduser` or `htpasswd -B`"


@pytest.mark.parametrize(("content", "message"), [
    (None, "auth.token.rootcertbundle: cannot read {path}: No such file or directory"),
    (b"no PEM here", "auth.token.rootcertbundle: {path}: no certificate or public key found"),
])
def test_unusable_rootcertbundle(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bundle.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        _app({"token": {"realm": "https://a/token", "service": "s", "issuer": "i", "rootcertbundle": str(path)}})
    assert str(caught.value) == message.format(path=path)
