"""The ACME account on disk: one key, made once and kept private; the account URL per CA."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import josepy as jose
import pytest

from regctl.errors import RegctlError
from regctl.tls.accounts import AccountStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "secrets" / "acme")
    key = store.key()
    assert isinstance(key, jose.JWKEC) and key.key.curve.name == "secp256r1"
    assert mode(store.path) == 0o700
    assert mode(store.key_path) == 0o600
    pem = store.key_path.read_bytes()
    assert AccountStore(store.path).key().thumbprint() == key.thumbprint()
    assert store.key_path.read_bytes() == pem


def test_existing_directory_is_made_private(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir(mode=0o755)
    store = AccountStore(tmp_path / "acme")
    store.key()
    assert mode(store.path) == 0o700


def test_registrations_are_kept_per_directory_with_mode_0600(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "acme")
    assert store.registration("https://ca.test/dir") is None
    store.save_registration("https://ca.test/dir", "https://ca.test/acct/1", "ops@example.com")
    store.save_registration("https://other.test/dir", "https://other.test/acct/9", None)
    again = AccountStore(tmp_path / "acme")
    assert again.registration("https://ca.test/dir") == "https://ca.test/acct/1"
    assert again.registration("https://other.test/dir") == "https://other.test/acct/9"
    assert mode(again.registrations_path) == 0o600
    saved = json.loads(again.registrations_path.read_text())
    assert saved["https://ca.test/dir"]["email"] == "ops@example.com"
    assert saved["https://ca.test/dir"]["created"].endswith("+00:00")


def test_saving_the_same_account_keeps_its_creation_time(tmp_path: Path) -> None:
    store = AccountStore(tmp_path)
    store.save_registration("https://ca.test/dir", "https://ca.test/acct/1", None)
    created = json.loads(store.registrations_path.read_text())["https://ca.test/dir"]["created"]
    store.registrations_path.write_text(store.registrations_path.read_text().replace(created, "2020-01-01T00:00:00"))
    store.save_registration("https://ca.test/dir", "https://ca.test/acct/1", "new@example.com")
    assert json.loads(store.registrations_path.read_text())["https://ca.test/dir"]["created"] == "2020-01-01T00:00:00"


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    store = AccountStore(tmp_path)
    store.registrations_path.write_text("{not json")
    with pytest.raises(RegctlError, match=r"accounts\.json: cannot read the ACME accounts"):
        store.registration("https://ca.test/dir")
    store.key_path.write_text("garbage")
    with pytest.raises(RegctlError, match=r"account\.key: not an unencrypted PEM private key") as caught:
        store.key()
    assert "new key would be a new ACME account" in (caught.value.hint or "")
    assert store.key_path.read_text() == "garbage"
