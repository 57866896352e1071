"""ACME account state on disk: one account key, and the account URL each CA gave it.

The directory (``secrets/acme/`` in an instance, ``acme.accountdir`` for the server) is 0700. ``account.key``
is made once, mode 0600, and never replaced: it *is* the account, so a new key would mean a new account (and
losing any External Account Binding made with the old one). ``accounts.json`` (0600) maps a directory URL to
``{"uri": account URL, "email": ..., "created": ISO time}``; a CA that no longer knows the account (Pebble
after a restart) is simply registered with again.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import josepy as jose
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from regctl.deploy.files import atomic_write, private_dir, write_new
from regctl.errors import RegctlError
from regctl.tls import bundle

KEY_FILE = "account.key"
REGISTRATIONS_FILE = "accounts.json"
FILE_MODE = 0o600


class AccountStore:
    """secrets/acme/ (0700): account.key (private key PEM, 0600, created once, never replaced) and
    accounts.json (0600): {directory URL: {"uri": account URL, "email": ..., "created": iso}}."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    @property
    def path(self) -> Path:
        return self._dir

    @property
    def key_path(self) -> Path:
        return self._dir / KEY_FILE

    @property
    def registrations_path(self) -> Path:
        return self._dir / REGISTRATIONS_FILE

    def key(self) -> jose.JWK:
        """The account key, made (EC P-256) on first use."""
        self._ensure_dir()
        try:
            pem = self.key_path.read_bytes()
        except FileNotFoundError:
            pem = bundle.key_pem(ec.generate_private_key(ec.SECP256R1())).encode()
            try:
                write_new(self.key_path, pem.decode(), FILE_MODE)
            except FileExistsError:  # another process made it first: use theirs
                pem = self.key_path.read_bytes()
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            private = None
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return jose.JWKEC(key=private)
        if isinstance(private, rsa.RSAPrivateKey):
            return jose.JWKRSA(key=private)
        raise RegctlError(
            f"{self.key_path}: not an unencrypted PEM private key (EC or RSA)",
            "restore the account key from a backup; a new key would be a new ACME account",
        )

    def registration(self, directory_url: str) -> str | None:
        """The account URL registered at ``directory_url``, if any."""
        entry = self._registrations().get(directory_url)
        return entry.get("uri") if isinstance(entry, dict) else None

    def save_registration(self, directory_url: str, uri: str, email: str | None) -> None:
        registrations = self._registrations()
        previous = registrations.get(directory_url) or {}
        created = previous.get("created") if previous.get("uri") == uri else None
        registrations[directory_url] = {
            "uri": uri,
            "email": email,
            "created": created or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        self._ensure_dir()
        atomic_write(self.registrations_path, json.dumps(registrations, indent=2, sort_keys=True) + "\n", FILE_MODE)

    def _registrations(self) -> dict:
        try:
            data = json.loads(self.registrations_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as error:
            raise RegctlError(
                f"{self.registrations_path}: cannot read the ACME accounts ({error})",
                "remove the file: the account is looked up again with the same key on the next issue",
            ) from None
        return data if isinstance(data, dict) else {}

    def _ensure_dir(self) -> None:
        private_dir(self._dir)
