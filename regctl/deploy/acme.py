"""tls.mode acme for an instance: regctl.yaml's ``tls.acme`` as what regctl.tls needs (AcmeSettings, a
ManagedCertificate), and the certificate the CA issued installed where the server reads it.

State, as certbot keeps it: the account in secrets/acme/ (regctl.tls.accounts.AccountStore, 0700, the key
0600 and made once), the EAB HMAC key in secrets/acme-eab-hmac (0600), and one order at a time under
secrets/acme/renew.lock, which the server's own renewer (tls.acme.auto) takes too. A new certificate is
written key first, then certificate, each atomically with the modes of ``regctl cert import``
(deploy/certs.py): the server keeps serving the old pair until both match, and a failed order leaves the
installed files as they were.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.serialization import Encoding

from regctl.deploy.certs import CERT_MODE, KEY_MODE, prepare_certs_dir, reload_server, server_running, write_file
from regctl.deploy.files import atomic_write
from regctl.deploy.instance import InstanceConfig, InstanceLayout, validate_config
from regctl.deploy.render import acme_ca_bundle, acme_domains, read_eab_hmac
from regctl.errors import RegctlError
from regctl.tls import bundle

if TYPE_CHECKING:
    from regctl.tls.acme_client import AcmeSettings, IssuedCertificate
    from regctl.tls.renewal import ManagedCertificate, RenewResult

Progress = Callable[[str], None]
EAB_HMAC_MODE = 0o600
# Directories whose certificates every client trusts already: `regctl cert trust` has nothing to add.
PUBLIC_DIRECTORIES = ("letsencrypt",)
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]{16,}={0,2}")  # 16 characters at least: 12 bytes of key


def _ignore(_: str) -> None:
    pass


# -- regctl.yaml ----------------------------------------------------------------------------------------------
def as_acme(layout: InstanceLayout) -> InstanceConfig:
    """regctl.yaml as it reads with tls.mode acme, whatever its mode now: `regctl cert issue` checks this
    before it contacts the CA, and switches the mode only once a certificate is installed."""
    import yaml

    raw = yaml.safe_load(layout.config.read_text()) or {}
    tls = raw.setdefault("tls", {}) if isinstance(raw, dict) else {}
    if isinstance(tls, dict):
        tls["mode"] = "acme"
    return validate_config(raw, hint=f"fix {layout.config}")


def check_eab_hmac(key: str) -> str:
    """``key`` without surrounding whitespace. CAs hand out the EAB HMAC key base64url-encoded; anything else
    is a RegctlError, so a pasted key id or a cut-off key fails here rather than at the CA."""
    text = key.strip()
    if not _BASE64URL_RE.fullmatch(text):
        raise RegctlError(
            "the EAB HMAC key is not base64url (16 or more letters, digits, '-' and '_')",
            "pass the HMAC key exactly as the CA gave it",
        )
    return text


def write_eab_hmac(layout: InstanceLayout, key: str) -> None:
    """Keep the EAB HMAC key in secrets/acme-eab-hmac, mode 0600 from its creation."""
    layout.secret.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(layout.acme_eab_hmac, check_eab_hmac(key) + "\n", EAB_HMAC_MODE, exact=True)


# -- what regctl.tls gets -------------------------------------------------------------------------------------
def acme_settings(config: InstanceConfig, layout: InstanceLayout, *, registry_answers: bool) -> AcmeSettings:
    """tls.acme as AcmeSettings. responder registry: files in certs/acme-challenge/ the running registry
    answers from when ``registry_answers`` (http-01 tokens for its plain-HTTP listener, tls-alpn-01
    certificates for its own TLS port), else regctl answers on the same port itself: the first certificate
    comes before the first `regctl up`, which needs it."""
    from regctl.tls.acme_client import AcmeSettings, directory_url

    acme = config.tls.acme
    try:
        directory = directory_url(acme.directory)
    except ValueError as exc:
        raise RegctlError(f"tls.acme.directory: {exc}", f"fix {layout.config}") from None
    webroot = acme.responder == "registry" and registry_answers
    bundle_path = acme_ca_bundle(config, layout)
    if bundle_path is not None and not bundle_path.is_file():
        raise RegctlError(f"{bundle_path} is missing, and tls.acme.ca_bundle names it", f"fix {layout.config}")
    return AcmeSettings(
        directory=directory,
        email=acme.email,
        challenge=acme.challenge,
        responder="webroot" if webroot else "standalone",
        http_port=acme.http_port,
        tls_port=acme.tls_port,
        # The registry's bind address, unless it is every interface ("" then: IPv6 too).
        bind="" if config.bind in ("0.0.0.0", "::") else config.bind,
        challenge_dir=layout.acme_challenges.absolute() if webroot else None,
        eab_kid=acme.eab_kid,
        eab_hmac_key=read_eab_hmac(config, layout),
        ca_bundle=bundle_path,
    )


def managed_certificate(
    config: InstanceConfig, layout: InstanceLayout, *, registry_answers: bool | None = None
) -> ManagedCertificate:
    """The instance's certificate as regctl.tls.renewal manages it (``registry_answers``: whether the
    running registry answers the challenge; None: whether its server runs now)."""
    from regctl.tls.renewal import ManagedCertificate

    if registry_answers is None:
        registry_answers = config.tls.acme.responder == "registry" and server_running(config, layout)
    return ManagedCertificate(
        name=config.name,
        certificate=layout.tls_certificate,
        key=layout.tls_key,
        domains=tuple(acme_domains(config)),
        settings=acme_settings(config, layout, registry_answers=registry_answers),
        account_dir=layout.acme_accounts,
        renew_days=config.tls.acme.renew_days,
    )


# -- installing what the CA issued ----------------------------------------------------------------------------
def install(
    config: InstanceConfig, layout: InstanceLayout, issued: IssuedCertificate, *, reload: bool = True
) -> str | None:
    """Write certs/domain.key, then certs/domain.crt (the leaf and its intermediates, as served), then
    certs/ca.crt (the chain's top, what `regctl cert trust` installs, as `cert import` does), each atomically;
    then, with ``reload``, SIGHUP the running server. Returns what was signalled (deploy.certs.reload_server)."""
    chain = bundle.load_certificates(issued.fullchain_pem.encode(), "the CA's certificate chain")
    prepare_certs_dir(layout)
    write_file(layout.tls_key, issued.key_pem, KEY_MODE)
    write_file(layout.tls_certificate, issued.fullchain_pem, CERT_MODE)
    write_file(layout.ca_certificate, chain[-1].public_bytes(Encoding.PEM).decode(), CERT_MODE)
    return reload_server(config, layout) if reload else None


def issue_certificate(
    config: InstanceConfig, layout: InstanceLayout, progress: Progress = _ignore
) -> IssuedCertificate:
    """A new certificate from the CA now, whatever is installed, written by :func:`install` (without the
    reload: the caller switches tls.mode and reloads). AcmeError (a RegctlError) when the CA refuses or cannot
    be reached; nothing is written then."""
    from regctl.tls.accounts import AccountStore
    from regctl.tls.acme_client import issue
    from regctl.tls.renewal import account_lock

    managed = managed_certificate(config, layout)
    with account_lock(managed.account_dir):
        issued = issue(managed.settings, AccountStore(managed.account_dir), managed.domains, progress)
        install(config, layout, issued, reload=False)
    return issued


def renew_certificate(
    config: InstanceConfig,
    layout: InstanceLayout,
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress = _ignore,
) -> tuple[RenewResult, str | None]:
    """regctl.tls.renewal.renew for the instance's certificate under secrets/acme/renew.lock, installing and
    reloading when renewed. Returns the result and what was signalled (None: nothing runs, or nothing was renewed).
    ACME failures are a ``failed`` result, not an exception; RegctlError when another renewal runs."""
    from regctl.tls.renewal import account_lock, renew

    signalled: list[str | None] = [None]

    def install_and_reload(issued: IssuedCertificate) -> None:
        signalled[0] = install(config, layout, issued)

    managed = managed_certificate(config, layout)
    with account_lock(managed.account_dir):
        result = renew(managed, install_and_reload, force=force, dry_run=dry_run, progress=progress)
    return result, signalled[0]


# -- regctl cert status ---------------------------------------------------------------------------------------
def acme_status(config: InstanceConfig, layout: InstanceLayout) -> dict[str, Any]:
    """What ``cert status`` adds in tls.mode acme, without contacting the CA: the directory, the account
    registered there, the names, how challenges are answered, and when ``cert renew`` will renew (by
    renew_days or a third of the lifetime; the CA's ARI window may move it earlier)."""
    from regctl.tls.accounts import AccountStore
    from regctl.tls.acme_client import directory_url
    from regctl.tls.inspect import iso_time
    from regctl.tls.renewal import due_at

    acme = config.tls.acme
    directory = directory_url(acme.directory)
    renew_at: datetime.datetime | None = None
    try:
        leaf = bundle.load_certificates(layout.tls_certificate.read_bytes(), str(layout.tls_certificate))[0]
    except (OSError, RegctlError):
        pass  # `cert status` reports the certificate itself
    else:
        renew_at = due_at(leaf, acme.renew_days, None)
    return {
        "directory": directory,
        "account": AccountStore(layout.acme_accounts).registration(directory),
        "email": acme.email,
        "domains": acme_domains(config),
        "challenge": acme.challenge,
        "responder": acme.responder,
        "auto": acme.auto,
        "renew_at": iso_time(renew_at) if renew_at else None,
    }
