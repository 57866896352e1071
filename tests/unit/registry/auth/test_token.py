"""Bearer token verification: signature, issuer, audience, expiry, and the access claims."""

from __future__ import annotations

import datetime
import time

import jwt
import pytest
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from regctl.errors import RegctlError
from regctl.registry.auth import Access, Challenge
from regctl.registry.auth.token import TokenAuth, TokenSettings, key_id, load_bundle

SERVICE, ISSUER, REALM = "registry.test", "regctl-token", "https://auth.test/token"


def _cert(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(params=["ES256", "RS256"])
def signer(request):
    key = ec.generate_private_key(ec.SECP256R1()) if request.param == "ES256" else rsa.generate_private_key(65537, 2048)
    return request.param, key


def _token(signer, access, **overrides) -> str:
    algorithm, key = signer
    claims = {"iss": ISSUER, "aud": SERVICE, "sub": "alice", "exp": int(time.time()) + 300,
              "nbf": int(time.time()) - 5, "iat": int(time.time()), "access": access, **overrides}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": key_id(key.public_key())})


def _auth(signer) -> TokenAuth:
    return TokenAuth(TokenSettings(REALM, SERVICE, ISSUER, load_bundle(_cert(signer[1]))))


def _request(token: str | None):
    return make_mocked_request("GET", "/v2/", headers={"Authorization": f"Bearer {token}"} if token else {})


PULL = Access("repository", "alice/app", "pull")
PUSH = Access("repository", "alice/app", "push")


async def test_valid_token_grants_its_access(signer):
    token = _token(signer, [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}])
    grant = await _auth(signer).authorize(_request(token), [PULL, PUSH])
    assert grant.user == "alice"


async def test_missing_token_is_challenged_with_realm_service_and_scope(signer):
    with pytest.raises(Challenge) as caught:
        await _auth(signer).authorize(_request(None), [PULL, PUSH])
    assert caught.value.header == (f'Bearer realm="{REALM}",service="{SERVICE}",'
                                   'scope="repository:alice/app:pull,push"')
    assert not caught.value.denied


async def test_insufficient_scope_is_denied(signer):
    token = _token(signer, [{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    with pytest.raises(Challenge) as caught:
        await _auth(signer).authorize(_request(token), [PULL, PUSH])
    assert caught.value.denied
    assert 'error="insufficient_scope"' in caught.value.header
    assert caught.value.detail == ["repository:alice/app:push"]


async def test_wildcard_action(signer):
    token = _token(signer, [{"type": "repository", "name": "alice/app", "actions": ["*"]}])
    await _auth(signer).authorize(_request(token), [PULL, PUSH, Access("repository", "alice/app", "delete")])


@pytest.mark.parametrize("overrides", [
    {"aud": "other-service"}, {"iss": "someone-else"}, {"exp": int(time.time()) - 3600},
])
async def test_wrong_claims_are_invalid(signer, overrides):
    token = _token(signer, [{"type": "repository", "name": "alice/app", "actions": ["pull"]}], **overrides)
    with pytest.raises(Challenge) as caught:
        await _auth(signer).authorize(_request(token), [PULL])
    assert 'error="invalid_token"' in caught.value.header
    assert not caught.value.denied


async def test_token_signed_by_an_untrusted_key(signer):
    algorithm, _ = signer
    other = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else rsa.generate_private_key(65537, 2048)
    token = _token((algorithm, other), [{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    with pytest.raises(Challenge):
        await _auth(signer).authorize(_request(token), [PULL])


async def test_unsigned_token_is_refused(signer):
    token = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": int(time.time()) + 60,
                        "access": [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]},
                       None, algorithm="none")
    with pytest.raises(Challenge):
        await _auth(signer).authorize(_request(token), [PULL])


def test_bundle_takes_certificates_and_public_keys():
    a, b = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    pem = _cert(a) + b.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    keys = load_bundle(pem)
    assert set(keys) == {key_id(a.public_key()), key_id(b.public_key())}
    with pytest.raises(RegctlError):
        load_bundle(b"nothing here")


def test_key_id_has_libtrust_shape():
    kid = key_id(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert len(kid.split(":")) == 12
    assert all(len(group) == 4 for group in kid.split(":"))
