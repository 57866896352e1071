"""The built-in token service: both request forms, the rules, expiry, anonymous access and refresh tokens.

Tokens are checked the way a registry checks them: by ``TokenAuth`` in another regctl that trusts the signing
key through ``auth.token.rootcertbundle``, over HTTP.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from regctl.config.server import ServerConfig, TokenServer
from regctl.errors import ConfigError
from regctl.registry.app import create_app
from regctl.registry.auth.htpasswd import hash_password
from regctl.registry.auth.issuer import REFRESH_LIFETIME, TokenIssuer
from regctl.registry.storage.inmemory import InMemoryDriver
from tests.helpers.certs import cert_pem, key_pem, self_signed, signing_key
from tests.unit.registry.conftest import push_image

SERVICE, ISSUER = "registry.test", "regctl-test"
USERS = {"alice": "s3cret", "bob": "pyp4ss", "carol": "c4rol", "a*": "star", "@devs": "sneaky"}
RULES = [
    {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
    {"subjects": ["@devs", "carol"], "repositories": ["team/*"], "actions": ["pull", "push"]},
    {"subjects": ["bob"], "repositories": ["team/tools"], "actions": ["delete"]},
    {"subjects": ["anonymous"], "repositories": ["public/*"], "actions": ["pull"]},
]


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    path.write_text("".join(f"{user}:{hash_password(pw, 4)}\n" for user, pw in users.items()))


@pytest.fixture(params=["ES256", "RS256"])
def key(request: pytest.FixtureRequest):
    return signing_key(request.param)


@pytest.fixture
def files(tmp_path: Path, key) -> dict[str, Path]:
    paths = {"key": tmp_path / "token.key", "htpasswd": tmp_path / "htpasswd", "bundle": tmp_path / "bundle.pem"}
    paths["key"].write_bytes(key_pem(key))
    paths["bundle"].write_bytes(cert_pem(self_signed(key)))
    write_htpasswd(paths["htpasswd"], USERS)
    return paths


def server_config(files: dict[str, Path], rules: list[dict[str, Any]] = RULES, **extra: Any) -> TokenServer:
    return TokenServer.model_validate({"issuer": ISSUER, "service": SERVICE, "key": str(files["key"]),
                                       "htpasswd": str(files["htpasswd"]), "groups": {"devs": ["alice", "bob"]},
                                       "rules": rules, **extra})


@pytest.fixture
async def service(aiohttp_client, files) -> TestClient:
    """A regctl whose only job is the token service (no auth of its own)."""
    config = ServerConfig()
    config.tokenserver = server_config(files)
    return await aiohttp_client(create_app(config, driver=InMemoryDriver()))


@pytest.fixture
async def registry(aiohttp_client, files) -> TestClient:
    """Another regctl that trusts the signing key through its rootcertbundle, holding a few repositories."""
    driver = InMemoryDriver()
    plain = await aiohttp_client(create_app(ServerConfig(), driver=driver))
    for name in ("alice/app", "bob/app", "team/tools", "public/base"):
        await push_image(plain, name, "1", seed=name.encode())
    config = ServerConfig.model_validate({"auth": {"token": {
        "realm": "https://auth.test/auth/token", "service": SERVICE, "issuer": ISSUER,
        "rootcertbundle": str(files["bundle"])}}})
    return await aiohttp_client(create_app(config, driver=driver))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def get_token(service: TestClient, *scopes: str, auth: tuple[str, str] | None = None,
                    **params: str) -> dict[str, Any]:
    query = [("service", SERVICE), *(("scope", s) for s in scopes), *params.items()]
    r = await service.get("/auth/token", params=query, headers=basic(*auth) if auth else {})
    assert r.status == 200, await r.text()
    assert r.headers["Cache-Control"] == "no-store"
    return await r.json()


def access(token: str) -> list[dict[str, Any]]:
    return jwt.decode(token, options={"verify_signature": False})["access"]


async def status(registry: TestClient, method: str, path: str, token: str) -> int:
    return (await registry.request(method, path, headers={"Authorization": f"Bearer {token}"})).status


# -- the GET form --------------------------------------------------------------------------------------------
async def test_get_form_issues_a_token_another_registry_accepts(service, registry) -> None:
    body = await get_token(service, "repository:alice/app:pull,push", "repository:team/tools:pull",
                           auth=("alice", "s3cret"), account="alice", client_id="docker")
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["access_token"] == body["token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    token = body["token"]
    assert access(token) == [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]},
                             {"type": "repository", "name": "team/tools", "actions": ["pull"]}]
    assert await status(registry, "GET", "/v2/alice/app/manifests/1", token) == 200
    assert await status(registry, "GET", "/v2/team/tools/manifests/1", token) == 200
    assert await status(registry, "GET", "/v2/bob/app/manifests/1", token) == 403


@pytest.mark.parametrize("auth", [("alice", "wrong"), ("nobody", "s3cret"), ("alice", "")])
async def test_wrong_credentials_are_refused(service, auth) -> None:
    r = await service.get("/auth/token", params={"service": SERVICE, "scope": "repository:alice/app:pull"},
                          headers=basic(*auth))
    assert r.status == 401
    assert r.headers["WWW-Authenticate"] == f'Basic realm="{ISSUER}"'
    assert (await r.json())["errors"][0]["code"] == "UNAUTHORIZED"


async def test_a_non_basic_authorization_is_refused(service) -> None:
    r = await service.get("/auth/token", params={"service": SERVICE}, headers={"Authorization": "Bearer x"})
    assert r.status == 401


async def test_anonymous_gets_only_what_anonymous_may(service, registry) -> None:
    token = (await get_token(service, "repository:public/base:pull,push", "repository:alice/app:pull"))["token"]
    assert access(token) == [{"type": "repository", "name": "public/base", "actions": ["pull"]}]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == ""
    assert await status(registry, "GET", "/v2/public/base/manifests/1", token) == 200
    assert await status(registry, "GET", "/v2/alice/app/manifests/1", token) == 403


async def test_no_anonymous_rule_means_log_in_first(aiohttp_client, files) -> None:
    config = ServerConfig()
    config.tokenserver = server_config(files, [rule for rule in RULES if "anonymous" not in rule["subjects"]])
    service = await aiohttp_client(create_app(config, driver=InMemoryDriver()))
    r = await service.get("/auth/token", params={"service": SERVICE, "scope": "repository:public/base:pull"})
    assert r.status == 401
    assert r.headers["WWW-Authenticate"] == f'Basic realm="{ISSUER}"'


async def test_another_service_is_refused(service) -> None:
    r = await service.get("/auth/token", params={"service": "elsewhere"}, headers=basic("alice", "s3cret"))
    assert r.status == 400
    assert (await r.json())["error"] == "invalid_request"


async def test_offline_token_gives_a_refresh_token(service) -> None:
    body = await get_token(service, auth=("alice", "s3cret"), offline_token="true")
    assert body["refresh_token"]


# -- the OAuth2 POST form ------------------------------------------------------------------------------------
async def post(client: TestClient, **form: str):
    return await client.post("/auth/token", data=form)


async def test_password_grant_with_offline_access_and_refresh(service, registry, files) -> None:
    r = await post(service, grant_type="password", username="alice", password="s3cret", service=SERVICE,
                   client_id="docker", access_type="offline", scope="repository:alice/app:pull repository:bob/app:pull")
    assert r.status == 200
    body = await r.json()
    assert access(body["token"]) == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]
    refresh = body["refresh_token"]

    r = await post(service, grant_type="refresh_token", refresh_token=refresh, service=SERVICE, client_id="docker",
                   scope="repository:alice/app:push")
    assert r.status == 200
    refreshed = await r.json()
    assert "refresh_token" not in refreshed  # the client keeps the one it has
    assert access(refreshed["token"]) == [{"type": "repository", "name": "alice/app", "actions": ["push"]}]
    assert jwt.decode(refreshed["token"], options={"verify_signature": False})["sub"] == "alice"

    # A refresh token is no access token, not even for /v2/ (which asks for no scope).
    assert await status(registry, "GET", "/v2/", refresh) == 401
    assert await status(registry, "GET", "/v2/", refreshed["token"]) == 200

    # A new password revokes it.
    write_htpasswd(files["htpasswd"], {**USERS, "alice": "n3w"})
    r = await post(service, grant_type="refresh_token", refresh_token=refresh, service=SERVICE)
    assert r.status == 401
    assert (await r.json())["errors"][0]["code"] == "UNAUTHORIZED"


async def test_removing_a_user_revokes_their_refresh_token(service, files) -> None:
    r = await post(service, grant_type="password", username="bob", password="pyp4ss", access_type="offline")
    refresh = (await r.json())["refresh_token"]
    write_htpasswd(files["htpasswd"], {k: v for k, v in USERS.items() if k != "bob"})
    assert (await post(service, grant_type="refresh_token", refresh_token=refresh)).status == 401


async def test_password_grant_without_offline_access_gives_no_refresh_token(service) -> None:
    r = await post(service, grant_type="password", username="alice", password="s3cret")
    assert "refresh_token" not in await r.json()


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"grant_type": "password", "username": "alice", "password": "wrong"}, 401, None),
    ({"grant_type": "refresh_token", "refresh_token": "not-a-token"}, 401, None),
    ({"grant_type": "password", "password": "s3cret"}, 400, "invalid_request"),
    ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ({"username": "alice", "password": "s3cret"}, 400, "invalid_request"),
])
async def test_post_errors(service, form: dict[str, str], status: int, error: str | None) -> None:
    r = await post(service, **form)
    assert r.status == status
    body = await r.json()
    if error:
        assert body["error"] == error
    else:
        assert body["errors"][0]["code"] == "UNAUTHORIZED"


async def test_post_needs_a_form_of_reasonable_size(service) -> None:
    r = await service.post("/auth/token", json={"grant_type": "password"})
    assert (r.status, (await r.json())["error"]) == (400, "invalid_request")
    r = await service.post("/auth/token", data={"grant_type": "password", "scope": "x" * 100_000})
    assert (r.status, (await r.json())["error_description"]) == (400, "request body too large")


# -- rules ---------------------------------------------------------------------------------------------------
@pytest.fixture
def issuer(files) -> TokenIssuer:
    return TokenIssuer.from_config(server_config(files))


@pytest.mark.parametrize(("user", "scope", "granted"), [
    ("alice", "repository:alice/a/b:pull,push,delete", ["pull", "push", "delete"]),  # {user}/*
    ("alice", "repository:alice/app:*", ["*"]),
    ("alice", "repository:team/x:pull,push,delete", ["pull", "push"]),  # @devs
    ("carol", "repository:team/x:push", ["push"]),  # named
    ("bob", "repository:team/tools:delete,pull", ["delete", "pull"]),  # rules add up, in the order asked
    ("bob", "repository:team/tools:*", ["*"]),  # all three allowed
    ("carol", "repository:team/x:*", ["pull", "push"]),  # "*" asked, not all allowed
    ("carol", "repository:alice/app:pull", None),
    ("alice", "repository:public/base:push", None),  # anonymous rules apply to users too: pull only
    ("alice", "repository:public/base:pull", ["pull"]),
    ("alice", "repository:alice/app:pull,fly", ["pull"]),  # unknown actions are dropped
    ("alice", "repository:alice/../bob/app:pull", None),  # not a repository name
    ("alice", "repository(plugin):alice/app:pull", None),  # unknown resource types get nothing
    ("alice", "nonsense", None),
    ("a*", "repository:ab/app:pull", None),  # a user name is never a glob pattern
    ("@devs", "repository:team/x:pull", None),  # nor a group
    ("@devs", "repository:@devs/x:pull", None),  # (and not a valid repository name either)
])
def test_granted_is_requested_intersected_with_the_rules(issuer, user, scope, granted) -> None:
    entries = issuer.access(user, [scope])
    assert entries == ([{"type": "repository", "name": scope.split(":")[1], "actions": granted}] if granted else [])


def test_catalog_token_carries_the_pull_patterns(issuer) -> None:
    assert issuer.access("alice", ["registry:catalog:*"]) == [
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": "alice/*", "actions": ["pull"]},
        {"type": "repository", "name": "team/*", "actions": ["pull"]},
        {"type": "repository", "name": "public/*", "actions": ["pull"]},
    ]
    # Anonymous callers have no {user} namespace; "a*" gets a pattern that matches only itself.
    assert [e["name"] for e in issuer.access(None, ["registry:catalog:*"])] == ["catalog", "public/*"]
    assert [e["name"] for e in issuer.access("a*", ["registry:catalog:*"])] == ["catalog", "a[*]/*", "public/*"]


# -- expiry ---------------------------------------------------------------------------------------------------
async def test_expiry(aiohttp_client, files, registry) -> None:
    config = server_config(files, expiry=600)
    token = TokenIssuer.from_config(config).issue("alice", ["repository:alice/app:pull"])
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert (token.expires_in, claims["exp"] - claims["iat"]) == (600, 600)
    assert await status(registry, "GET", "/v2/alice/app/manifests/1", token.token) == 200

    # Issued long enough ago to be past its expiry (and the verifier's leeway): refused as invalid.
    old = TokenIssuer(config, *_key(files), TokenIssuer.from_config(config).htpasswd,
                      clock=lambda: time.time() - 600 - 120)
    expired = old.issue("alice", ["repository:alice/app:pull"]).token
    r = await registry.get("/v2/alice/app/manifests/1", headers={"Authorization": f"Bearer {expired}"})
    assert r.status == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_refresh_tokens_expire(files) -> None:
    config = server_config(files)
    now = [time.time()]
    issuer = TokenIssuer(config, *_key(files), TokenIssuer.from_config(config).htpasswd, clock=lambda: now[0])
    refresh = issuer.issue("alice", [], offline=True).refresh_token
    assert refresh is not None
    assert issuer.refresh_user(refresh) == "alice"
    now[0] += REFRESH_LIFETIME + 1
    assert issuer.refresh_user(refresh) is None


def _key(files: dict[str, Path]):
    from regctl.registry.auth.issuer import load_signing_key

    return load_signing_key(str(files["key"]))


# -- keys and files ---------------------------------------------------------------------------------------------
def test_signing_algorithm_follows_the_key(files, key) -> None:
    issuer = TokenIssuer.from_config(server_config(files))
    header = jwt.get_unverified_header(issuer.issue("alice", []).token)
    assert header["alg"] == ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")


@pytest.mark.parametrize(("content", "message"), [
    (None, "tokenserver.key: cannot read {path}: No such file or directory"),
    (b"not a key", "tokenserver.key: {path} is not an unencrypted PEM private key"),
    ("encrypted", "tokenserver.key: {path} is not an unencrypted PEM private key"),
    ("ed25519", "tokenserver.key: {path}: the key must be EC (P-256, P-384, P-521) or RSA of at least 2048 bits"),
])
def test_unusable_signing_key(files, content, message) -> None:
    path = files["key"]
    if content is None:
        path.unlink()
    elif content == "encrypted":
        path.write_bytes(signing_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.BestAvailableEncryption(b"pw")))
    elif content == "ed25519":
        path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        TokenIssuer.from_config(server_config(files))
    assert str(caught.value) == message.format(path=path)


def test_missing_htpasswd_names_the_key(files) -> None:
    files["htpasswd"].unlink()
    with pytest.raises(ConfigError) as caught:
        TokenIssuer.from_config(server_config(files))
    assert str(caught.value) == (f"tokenserver.htpasswd: cannot read htpasswd file {files['htpasswd']}: "
                                 "No such file or directory")
