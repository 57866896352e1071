"""Certificates from an ACME CA (Let's Encrypt, or any other by URL) with the ``acme`` library.

:func:`issue` runs one order: account (registered once per CA, with External Account Binding when given),
new key and CSR, every authorization answered with the configured challenge, finalize. Named ``acme_client``
so it is never mistaken for the ``acme`` package. Every failure becomes an :class:`AcmeError`: one readable
line (an ACME problem document as ``type: detail``) and a hint saying what to do about it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import josepy as jose
import requests
from acme import client, crypto_util, messages
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from regctl import __version__
from regctl.config.server import join_addr
from regctl.errors import RegctlError
from regctl.tls import bundle, challenges

if TYPE_CHECKING:
    from regctl.tls.accounts import AccountStore

logger = logging.getLogger(__name__)

DIRECTORIES: dict[str, str] = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

Challenge = Literal["http-01", "tls-alpn-01"]
Responder = Literal["standalone", "webroot"]

_ERROR_PREFIX = "urn:ietf:params:acme:error:"
# Each HTTP request to the CA; the whole order is bounded by AcmeSettings.timeout.
_REQUEST_TIMEOUT = 30
_REGISTRATION = "the account registration"
_UNRESOLVED = ("could not resolve", "NXDOMAIN", "no valid A records", "No valid IP addresses")


def directory_url(name_or_url: str) -> str:
    """A directory URL from a name in :data:`DIRECTORIES` or an ``https://`` (or ``http://``) URL."""
    value = name_or_url.strip()
    if value in DIRECTORIES:
        return DIRECTORIES[value]
    if value.startswith(("https://", "http://")) and len(value.split("://", 1)[1]) > 0:
        return value
    names = ", ".join(DIRECTORIES)
    raise ValueError(f"unknown ACME directory {name_or_url!r}: use {names} or the directory's https:// URL")


@dataclass(frozen=True)
class AcmeSettings:
    directory: str  # URL (directory_url already applied)
    email: str | None = None
    challenge: Challenge = "http-01"
    # standalone: regctl answers itself while the order runs (HTTP-01 on http_port, TLS-ALPN-01 on tls_port,
    # bound to bind, "" = every interface). webroot: files in challenge_dir the running registry answers
    # from: HTTP-01 tokens for its challenge listener, TLS-ALPN-01 certificates for its own TLS listener.
    responder: Responder = "standalone"
    http_port: int = 80
    tls_port: int = 443
    bind: str = ""
    challenge_dir: Path | None = None  # required for webroot
    eab_kid: str | None = None
    eab_hmac_key: str | None = None  # base64url, as CAs hand it out
    ca_bundle: Path | None = None  # PEM to verify the CA's own HTTPS with (pebble); None = system trust
    key_type: Literal["ec256", "rsa2048"] = "ec256"  # the certificate's key
    timeout: float = 90.0  # seconds for the whole order (validation + finalize)


class AcmeError(RegctlError):
    """An ACME failure: ``message`` is one line, ``hint`` what to do about it."""


@dataclass(frozen=True)
class IssuedCertificate:
    fullchain_pem: str  # leaf then intermediates, as served
    key_pem: str  # PKCS8 PEM, unencrypted
    not_before: datetime.datetime  # UTC aware
    not_after: datetime.datetime


def _reach(settings: AcmeSettings) -> str:
    """Where the CA's validation must arrive, for hints."""
    if settings.challenge == "tls-alpn-01" and settings.responder == "webroot":
        return ("the CA checks TLS-ALPN-01 on port 443 of the domain, which must reach the registry's own TLS port "
                f"(it answers from {settings.challenge_dir})")
    if settings.challenge == "tls-alpn-01":
        return f"the CA checks TLS-ALPN-01 on port 443 of the domain, which must reach port {settings.tls_port} here"
    if settings.responder == "webroot":
        return ("the CA checks HTTP-01 on port 80 of the domain, which must reach the registry's challenge "
                f"listener (acme.httpaddr) serving {settings.challenge_dir}")
    return f"the CA checks HTTP-01 on port 80 of the domain, which must reach port {settings.http_port} here"


def _hint(code: str | None, settings: AcmeSettings, doing: str = "") -> str | None:
    if code in ("unauthorized", "malformed") and doing == _REGISTRATION and settings.eab_kid:
        return "check the EAB key id and HMAC key (--acme-eab-kid, --acme-eab-hmac-key-file) the CA gave you"
    if code == "rateLimited":
        return ("wait until the CA's rate limit resets (the message says when); try changes against "
                "--acme-directory letsencrypt-staging first")
    if code == "caa":
        return "the domain's CAA DNS records must allow this CA to issue (or be removed)"
    if code == "dns":
        return "the domain must resolve in public DNS (A/AAAA records) to this machine's address"
    if code in ("connection", "tls"):
        return f"{_reach(settings)} (firewall, port forwarding)"
    if code in ("unauthorized", "incorrectResponse"):
        return f"another server answered: the domain must point to this machine, and {_reach(settings)}"
    if code == "externalAccountRequired":
        return ("this CA requires External Account Binding: pass --acme-eab-kid and --acme-eab-hmac-key-file "
                "from your account at the CA")
    if code == "rejectedIdentifier":
        return "this CA does not issue certificates for that name"
    if code in ("invalidContact", "unsupportedContact"):
        return "check the e-mail address (--email)"
    if code == "userActionRequired":
        return "the CA needs you to act on your account (e.g. accept new terms of service): see its message"
    if code == "serverInternal":
        return "the CA had an internal error: try again later"
    return None


def _first_hint(codes: Sequence[str | None], settings: AcmeSettings, doing: str = "") -> str | None:
    return next((hint for hint in (_hint(code, settings, doing) for code in codes) if hint), None)


def _problem_code(problem: messages.Error) -> str:
    typ = str(problem.typ or "")
    return typ.removeprefix(_ERROR_PREFIX) if typ != "about:blank" else ""


def describe_problem(problem: messages.Error) -> str:
    """An ACME problem document as one line: ``type: detail`` (type without the ACME URN prefix), each
    subproblem after a ``; ``, prefixed by its identifier."""
    code = _problem_code(problem)
    detail = " ".join(str(problem.detail or problem.title or problem.description or "").split())
    text = ": ".join(part for part in (code, detail) if part) or "no details given"
    for sub in problem.subproblems or ():
        who = f"{sub.identifier.value}: " if sub.identifier else ""
        text += f"; {who}{describe_problem(sub)}"
    return text


def _unreachable(settings: AcmeSettings, error: requests.RequestException) -> AcmeError:
    if isinstance(error, requests.exceptions.SSLError):
        reason = "its HTTPS certificate is not trusted" if "CERTIFICATE_VERIFY_FAILED" in str(error) else "TLS failed"
        hint = ("check the directory URL; for a private CA give its certificate (ca_bundle)"
                if settings.ca_bundle is None else f"check that {settings.ca_bundle} holds the CA's HTTPS issuer")
        return AcmeError(f"cannot reach the ACME CA at {settings.directory}: {reason}", hint)
    if isinstance(error, requests.exceptions.Timeout):
        reason = "timed out"
    elif isinstance(error, requests.exceptions.ConnectionError):
        text = str(error)
        reason = ("connection refused" if "refused" in text.lower()
                  else "name does not resolve" if "resolve" in text.lower() or "Name or service" in text
                  else "connection failed")
    else:
        reason = type(error).__name__
    return AcmeError(f"cannot reach the ACME CA at {settings.directory}: {reason}",
                     "check the directory URL and that this machine can reach it over HTTPS (firewall, proxy)")


def _validation_error(error: acme_errors.ValidationError, settings: AcmeSettings) -> AcmeError:
    parts, codes = [], []
    for authzr in error.failed_authzrs:
        domain = authzr.body.identifier.value
        failed = [c for c in authzr.body.challenges if c.error is not None]
        for chall in failed:
            parts.append(f"{domain} ({chall.chall.typ}): {describe_problem(chall.error)}")
            # Some CAs (pebble) report a name without addresses as a connection problem.
            unresolved = any(word in str(chall.error.detail or "") for word in _UNRESOLVED)
            codes.append("dns" if unresolved else chall.error.code)
        if not failed:
            parts.append(f"{domain}: authorization {authzr.body.status}")
    return AcmeError("the CA could not validate " + "; ".join(parts), _first_hint(codes, settings))


def explain(error: BaseException, settings: AcmeSettings, doing: str) -> AcmeError:
    """The :class:`AcmeError` for ``error`` raised while ``doing`` (e.g. ``"the order"``)."""
    if isinstance(error, AcmeError):
        return error
    if isinstance(error, acme_errors.ValidationError):
        return _validation_error(error, settings)
    if isinstance(error, acme_errors.IssuanceError):
        error = error.error
    if isinstance(error, messages.Error):
        codes = [error.code, *(sub.code for sub in error.subproblems or ())]  # compound: the hint is in a subproblem
        return AcmeError(f"the CA refused {doing}: {describe_problem(error)}", _first_hint(codes, settings, doing))
    if isinstance(error, jose.DeserializationError | requests.exceptions.InvalidJSONError):
        return AcmeError(f"{settings.directory} did not answer as an ACME CA during {doing}",
                         "check the directory URL")
    if isinstance(error, requests.RequestException):
        return _unreachable(settings, error)
    if isinstance(error, acme_errors.TimeoutError):
        return AcmeError(f"the CA did not complete {doing} within {settings.timeout:.0f} s",
                         "try again; if it keeps happening, raise the timeout or check the CA's status page")
    if isinstance(error, acme_errors.ClientError):
        response = error.args[0] if error.args else None
        status = getattr(response, "status_code", None)
        detail = f"HTTP {status}" if status else str(error)
        return AcmeError(f"{settings.directory} did not answer as an ACME CA during {doing}: {detail}",
                         "check the directory URL")
    return AcmeError(f"ACME {doing} failed: {type(error).__name__}: {error}")


@contextlib.contextmanager
def _step(settings: AcmeSettings, doing: str) -> Iterator[None]:
    try:
        yield
    except (acme_errors.Error, requests.RequestException, jose.DeserializationError) as error:
        logger.debug("ACME %s failed", doing, exc_info=True)
        raise explain(error, settings, doing) from error


def _check(settings: AcmeSettings) -> None:
    if settings.responder == "webroot" and settings.challenge_dir is None:
        listener = "TLS listener answers from" if settings.challenge == "tls-alpn-01" else "challenge listener serves"
        raise AcmeError("the webroot responder needs a challenge directory",
                        f"set the directory the registry's {listener}")
    if bool(settings.eab_kid) != bool(settings.eab_hmac_key):
        raise AcmeError("External Account Binding needs both the key id and the HMAC key",
                        "pass --acme-eab-kid and --acme-eab-hmac-key-file together")
    if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
        raise AcmeError(f"the CA bundle {settings.ca_bundle} does not exist",
                        "give the PEM file of the CA's HTTPS issuer, or none for the system trust store")


def _signing_alg(key: jose.JWK) -> jose.JWASignature:
    if isinstance(key, jose.JWKEC):
        return {"secp256r1": jose.ES256, "secp384r1": jose.ES384, "secp521r1": jose.ES512}[key.key.curve.name]
    return jose.RS256


def _connect(settings: AcmeSettings, key: jose.JWK) -> client.ClientV2:
    net = client.ClientNetwork(
        key,
        alg=_signing_alg(key),
        verify_ssl=str(settings.ca_bundle) if settings.ca_bundle else True,
        user_agent=f"regctl/{__version__}",
        timeout=_REQUEST_TIMEOUT,
    )
    with _step(settings, "the directory request"):
        directory = client.ClientV2.get_directory(settings.directory, net)
    if "newOrder" not in directory.to_partial_json():
        raise AcmeError(f"{settings.directory} is not an ACME directory (it has no newOrder)",
                        "check the directory URL")
    return client.ClientV2(directory, net=net)


def _register(acme: client.ClientV2, settings: AcmeSettings, account: AccountStore, key: jose.JWK,
              progress: Callable[[str], None]) -> None:
    """Sets the client's account: the stored one when the CA still knows it, else a new registration."""
    stored = account.registration(settings.directory)
    uri = None
    if stored:
        with _step(settings, "the account lookup"):
            try:
                acme.new_account(messages.NewRegistration(only_return_existing=True))
            except acme_errors.ConflictError as existing:  # 200 + Location: the account this key holds
                uri = existing.location
            except messages.Error as error:
                if error.code != "accountDoesNotExist":
                    raise
                progress(f"the CA no longer knows account {stored}; registering again")
    if uri is None:
        who = settings.email or "(no e-mail)"
        progress(f"registering account {who} at {settings.directory}")
        with _step(settings, _REGISTRATION):
            eab = None
            if settings.eab_kid and settings.eab_hmac_key:
                try:
                    eab = messages.ExternalAccountBinding.from_data(
                        account_public_key=key.public_key(), kid=settings.eab_kid,
                        hmac_key=settings.eab_hmac_key, directory=acme.directory)
                except (ValueError, TypeError) as error:
                    raise AcmeError(f"the EAB HMAC key is not base64url: {error}",
                                    "copy the HMAC key exactly as the CA shows it") from None
            elif acme.external_account_required():
                raise AcmeError(f"the CA at {settings.directory} requires External Account Binding",
                                _hint("externalAccountRequired", settings))
            registration = messages.NewRegistration.from_data(
                email=settings.email, terms_of_service_agreed=True, external_account_binding=eab)
            try:
                uri = acme.new_account(registration).uri
            except acme_errors.ConflictError as existing:  # the key already has an account here
                uri = existing.location
    acme.net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
    if uri != stored:
        account.save_registration(settings.directory, uri, settings.email)


def _new_key(key_type: str) -> str:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, 2048) if key_type == "rsa2048" else ec.generate_private_key(ec.SECP256R1())
    )
    return bundle.key_pem(key)


def _pick(authzr: messages.AuthorizationResource, challenge: str) -> messages.ChallengeBody:
    for challb in authzr.body.challenges:
        if challb.chall.typ == challenge:
            return challb
    offered = ", ".join(str(c.to_partial_json().get("type", "?")) for c in authzr.body.challenges) or "none"
    raise AcmeError(f"the CA offers no {challenge} challenge for {authzr.body.identifier.value} "
                    f"(it offers: {offered})",
                    "choose a challenge the CA offers (wildcard names need dns-01, which regctl does not do)"
                    if challenge != "tls-alpn-01" else "use the http-01 challenge")


@contextlib.contextmanager
def _responder(settings: AcmeSettings, key: jose.JWK, pending: list[tuple[str, messages.ChallengeBody]],
               progress: Callable[[str], None]) -> Iterator[None]:
    """Makes the answers for ``pending`` [(domain, challenge)] reachable for the duration of the block."""
    if settings.challenge == "tls-alpn-01":
        certs = {domain.lower(): challenges.tls_alpn01_certificate(domain, challb.chall.key_authorization(key))
                 for domain, challb in pending}
        what = "TLS-ALPN-01"
        if settings.responder == "webroot":
            assert settings.challenge_dir is not None  # _check
            where = str(settings.challenge_dir)
            serve = challenges.tls_alpn01_webroot(settings.challenge_dir, certs)
        else:
            where = join_addr(settings.bind, settings.tls_port)
            serve = challenges.tls_alpn01_standalone(settings.bind, settings.tls_port, certs)
    else:
        resources = {}
        for _, challb in pending:
            _, validation = challb.response_and_validation(key)
            resources[challb.chall.path] = validation
        what = "HTTP-01"
        if settings.responder == "webroot":
            assert settings.challenge_dir is not None  # _check
            where = str(settings.challenge_dir)
            serve = challenges.webroot(settings.challenge_dir, resources)
        else:
            where = join_addr(settings.bind, settings.http_port)
            serve = challenges.http01_standalone(settings.bind, settings.http_port, resources)
    for domain, _ in pending:
        progress(f"answering {settings.challenge} for {domain} on {where}")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(serve)
        except OSError as error:
            raise _responder_error(settings, what, where, error) from error
        yield


def _responder_error(settings: AcmeSettings, what: str, where: str, error: OSError) -> AcmeError:
    # socket.create_server's strerror also repeats the address: keep the plain reason
    reason = os.strerror(error.errno).lower() if error.errno else str(error)
    if settings.responder == "webroot":
        return AcmeError(f"cannot write the {what} challenge file in {where}: {reason}",
                         "the challenge directory must be writable by this user")
    alpn = what == "TLS-ALPN-01"
    port = settings.tls_port if alpn else settings.http_port
    listener = "TLS listener" if alpn else "challenge listener"
    if error.errno in (errno.EACCES, errno.EPERM):
        hint = (f"ports below 1024 need root (or CAP_NET_BIND_SERVICE): run as root, choose another port than "
                f"{port} and forward {443 if alpn else 80} to it, or use the registry's own {listener} (webroot)")
    elif error.errno == errno.EADDRINUSE:
        hint = (f"another program listens on {port} (the registry itself?): stop it for the order, or let the "
                f"registry answer through its own {listener} (webroot)")
    else:
        hint = None
    return AcmeError(f"cannot listen on {where} for the {what} challenge: {reason}", hint)


def _issued(fullchain_pem: str, key_pem: str) -> IssuedCertificate:
    leaf = x509.load_pem_x509_certificate(fullchain_pem.encode())
    return IssuedCertificate(fullchain_pem, key_pem, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def issue(settings: AcmeSettings, account: AccountStore, domains: Sequence[str],
          progress: Callable[[str], None] = lambda _: None) -> IssuedCertificate:
    """One order for ``domains`` with a new key; nothing but the account state is written to disk.

    Raises :class:`AcmeError` for every failure (CA unreachable, refused, validation failed, port not bindable).
    """
    names = list(dict.fromkeys(d.strip().lower() for d in domains if d.strip()))
    if not names:
        raise AcmeError("no domain to issue a certificate for", "give at least one --domain")
    _check(settings)
    # acme compares deadlines with naive local datetime.now()
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=settings.timeout)
    key = account.key()
    acme = _connect(settings, key)
    _register(acme, settings, account, key, progress)

    key_pem = _new_key(settings.key_type)
    progress(f"ordering for {', '.join(names)}")
    with _step(settings, "the order"):
        order = acme.new_order(crypto_util.make_csr(key_pem.encode(), names))
    pending = []
    for authzr in order.authorizations:
        if authzr.body.status == messages.STATUS_VALID:
            continue  # authorized by an earlier order
        pending.append((authzr.body.identifier.value, _pick(authzr, settings.challenge)))

    with _responder(settings, key, pending, progress):
        with _step(settings, "the challenge"):
            for _, challb in pending:
                acme.answer_challenge(challb, challb.chall.response(key))
        with _step(settings, "the validation"):
            order = acme.poll_authorizations(order, deadline)
    progress("finalizing")
    with _step(settings, "the certificate"):
        order = acme.finalize_order(order, deadline)
    issued = _issued(order.fullchain_pem, key_pem)
    progress(f"issued, valid until {issued.not_after:%Y-%m-%d %H:%M} UTC")
    return issued


def renewal_window(settings: AcmeSettings, account: AccountStore, certificate_pem: bytes
                   ) -> datetime.datetime | None:
    """When the CA suggests renewing (ARI, ``ClientV2.renewal_time``); None when it offers no renewalInfo or
    asking fails (the caller then renews by the certificate's lifetime)."""
    try:
        acme = _connect(settings, account.key())
        when, _ = acme.renewal_time(certificate_pem)
    except (RegctlError, acme_errors.Error, requests.RequestException, ValueError) as error:
        logger.debug("no ARI window from %s: %s", settings.directory, error)
        return None
    if when is not None and when.tzinfo is None:
        when = when.astimezone(datetime.UTC)
    return when

