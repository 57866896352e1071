"""Every route x {no credentials, wrong, right, insufficient scope}, for htpasswd and for tokens.

What a client notices: the status, the error code, the ``WWW-Authenticate`` challenge (realm, service, scope)
and the API version header on each refusal; that a refused request changed nothing and returned no data; and
that the right credentials (a token fetched from the built-in token service with the challenge's scope, as
Docker does) do get through. The registry holds alice/app, bob/x, public/app and carol/y.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from regctl.config.server import ServerConfig
from regctl.registry.app import create_app
from regctl.registry.auth.htpasswd import hash_password
from regctl.registry.auth.token import key_id
from regctl.registry.storage.inmemory import InMemoryDriver
from tests.helpers.certs import key_pem, signing_key
from tests.unit.registry.conftest import digest_of, push_blob, push_image

REALM = "Registry Realm"
TOKEN_REALM = "https://registry.test/auth/token"
SERVICE, ISSUER = "registry.test", "regctl-test"
API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
CHUNK = b"some upload data"


@dataclass
class Registry:
    mode: str
    client: TestClient  # with access control
    plain: TestClient  # the same storage without it: sets up and inspects
    manifest: bytes
    manifest_digest: str
    blob: str
    upload: str

    async def snapshot(self) -> dict[str, Any]:
        """Everything a refused request must leave as it was."""
        async def status(path: str) -> int:
            return (await self.plain.head(path)).status

        catalog = await (await self.plain.get("/v2/_catalog")).json()
        tags = await (await self.plain.get("/v2/alice/app/tags/list")).json()
        upload = await self.plain.get(f"/v2/alice/app/blobs/uploads/{self.upload}")
        return {
            "catalog": catalog,
            "tags": tags,
            "manifest": await status(f"/v2/alice/app/manifests/{self.manifest_digest}"),
            "blob": await status(f"/v2/alice/app/blobs/{self.blob}"),
            "upload": (upload.status, upload.headers.get("Range")),
            "chunk": await status(f"/v2/alice/app/blobs/{digest_of(CHUNK)}"),
        }


def _config(mode: str, tmp_path) -> ServerConfig:
    htpasswd = tmp_path / "htpasswd"
    users = {"alice": "s3cret", "bob": "pyp4ss", "carol": "c4rol"}
    htpasswd.write_text("".join(f"{user}:{hash_password(pw, 4)}\n" for user, pw in users.items()))
    doc: dict[str, Any] = {"storage": {"delete": {"enabled": True}}}
    if mode == "htpasswd":
        doc["auth"] = {"htpasswd": {"realm": REALM, "path": str(htpasswd)}}
    else:
        key = tmp_path / "token.key"
        key.write_bytes(key_pem(signing_key()))
        doc["auth"] = {"token": {"realm": TOKEN_REALM, "service": SERVICE, "issuer": ISSUER}}
        doc["tokenserver"] = {
            "issuer": ISSUER, "service": SERVICE, "key": str(key), "htpasswd": str(htpasswd),
            "groups": {"readers": ["bob"]},
            "rules": [
                {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
                {"subjects": ["@readers"], "repositories": ["alice/*"], "actions": ["pull"]},
                {"subjects": ["anonymous"], "repositories": ["public/*"], "actions": ["pull"]},
            ],
        }
    return ServerConfig.model_validate(doc)


@pytest.fixture
def make_registry(aiohttp_client, tmp_path) -> Callable[[str], Awaitable[Registry]]:
    async def make(mode: str) -> Registry:
        driver = InMemoryDriver()
        no_auth = ServerConfig.model_validate({"storage": {"delete": {"enabled": True}}})
        plain = await aiohttp_client(create_app(no_auth, driver=driver))
        digest, manifest = await push_image(plain, "alice/app", "latest")
        for name in ("bob/x", "public/app", "carol/y"):
            await push_image(plain, name, "1", seed=name.encode())
        blob = await push_blob(plain, "alice/app", b"a blob of alice's")
        started = await plain.post("/v2/alice/app/blobs/uploads/")
        upload = started.headers["Location"].rsplit("/", 1)[1].split("?")[0]
        client = await aiohttp_client(create_app(_config(mode, tmp_path), driver=driver))
        return Registry(mode, client, plain, manifest, digest, blob, upload)

    return make


@pytest.fixture(params=["htpasswd", "token"])
async def registry(request: pytest.FixtureRequest, make_registry) -> Registry:
    return await make_registry(request.param)


@pytest.fixture
async def token_registry(make_registry) -> Registry:
    return await make_registry("token")


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[Registry], str]
    scope: str | None  # what the token challenge asks for; None: authentication only
    ok: int  # the status with the right credentials
    body: Callable[[Registry], bytes] | None = None
    headers: tuple[tuple[str, str], ...] = ()


PULL, PUSH, DELETE = "repository:alice/app:pull", "repository:alice/app:pull,push", "repository:alice/app:delete"
CALLS = {
    "base GET": Call("GET", lambda r: "/v2/", None, 200),
    "base HEAD": Call("HEAD", lambda r: "/v2/", None, 200),
    "catalog GET": Call("GET", lambda r: "/v2/_catalog", "registry:catalog:*", 200),
    "tags GET": Call("GET", lambda r: "/v2/alice/app/tags/list", PULL, 200),
    "manifest GET": Call("GET", lambda r: "/v2/alice/app/manifests/latest", PULL, 200),
    "manifest HEAD": Call("HEAD", lambda r: "/v2/alice/app/manifests/latest", PULL, 200),
    "manifest PUT": Call("PUT", lambda r: "/v2/alice/app/manifests/v2", PUSH, 201, lambda r: r.manifest,
                         (("Content-Type", "application/vnd.oci.image.manifest.v1+json"),)),
    "manifest DELETE": Call("DELETE", lambda r: f"/v2/alice/app/manifests/{r.manifest_digest}", DELETE, 202),
    "upload POST": Call("POST", lambda r: "/v2/alice/app/blobs/uploads/", PUSH, 202),
    "upload GET": Call("GET", lambda r: f"/v2/alice/app/blobs/uploads/{r.upload}", PUSH, 204),
    "upload PATCH": Call("PATCH", lambda r: f"/v2/alice/app/blobs/uploads/{r.upload}", PUSH, 202, lambda r: CHUNK),
    "upload PUT": Call("PUT", lambda r: f"/v2/alice/app/blobs/uploads/{r.upload}?digest={digest_of(CHUNK)}", PUSH,
                       201, lambda r: CHUNK),
    "upload DELETE": Call("DELETE", lambda r: f"/v2/alice/app/blobs/uploads/{r.upload}", PUSH, 204),
    "blob GET": Call("GET", lambda r: f"/v2/alice/app/blobs/{r.blob}", PULL, 200),
    "blob HEAD": Call("HEAD", lambda r: f"/v2/alice/app/blobs/{r.blob}", PULL, 200),
    "blob DELETE": Call("DELETE", lambda r: f"/v2/alice/app/blobs/{r.blob}", DELETE, 202),
    "referrers GET": Call("GET", lambda r: f"/v2/alice/app/referrers/{r.manifest_digest}", PULL, 200),
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fetch_token(client: TestClient, user: str, password: str, scope: str | None) -> str:
    """What Docker does with a Bearer challenge: GET the realm with Basic credentials and the scope."""
    params = {"service": SERVICE, **({"scope": scope} if scope else {})}
    r = await client.get("/auth/token", params=params, headers=basic(user, password))
    assert r.status == 200, await r.text()
    return (await r.json())["token"]


def forged_token() -> str:
    # Right claims, signed by a key the registry does not trust.
    key = signing_key()
    claims = {"iss": ISSUER, "aud": SERVICE, "sub": "alice", "exp": int(time.time()) + 300,
              "access": [{"type": "repository", "name": "alice/app", "actions": ["*"]},
                         {"type": "registry", "name": "catalog", "actions": ["*"]}]}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": key_id(key.public_key())})


async def send(registry: Registry, call: Call, headers: dict[str, str]):
    body = call.body(registry) if call.body else None
    return await registry.client.request(call.method, call.path(registry), data=body,
                                         headers={**dict(call.headers), **headers})


def expected_challenge(registry: Registry, call: Call, error: str | None = None) -> str:
    if registry.mode == "htpasswd":
        return f'Basic realm="{REALM}"'
    parts = [f'realm="{TOKEN_REALM}"', f'service="{SERVICE}"']
    if call.scope:
        parts.append(f'scope="{call.scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def records(scope: str | None) -> list[dict[str, str]]:
    if scope is None:
        return []
    kind, name, actions = scope.split(":")
    return [{"Type": kind, "Class": "", "Name": name, "Action": action} for action in actions.split(",")]


async def assert_refused(registry: Registry, call: Call, headers: dict[str, str], status: int, code: str,
                         challenge: str) -> None:
    before = await registry.snapshot()
    r = await send(registry, call, headers)
    assert r.status == status
    assert r.headers["WWW-Authenticate"] == challenge
    assert r.headers[API_VERSION[0]] == API_VERSION[1]
    if call.method != "HEAD":
        body = await r.json()
        assert [e["code"] for e in body["errors"]] == [code]
        assert set(body) == {"errors"}  # nothing but the error: no data
        if status == 401:  # Distribution's detail, which skopeo needs to print "authentication required"
            assert body["errors"][0]["detail"] == records(call.scope)
    assert await registry.snapshot() == before


Credentials = Callable[[Registry, Call], Awaitable[dict[str, str]]]


async def _none(registry: Registry, call: Call) -> dict[str, str]:
    return {}


async def _wrong(registry: Registry, call: Call) -> dict[str, str]:
    return basic("alice", "wrong") if registry.mode == "htpasswd" else bearer(forged_token())


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("credentials", [_none, _wrong], ids=["no credentials", "wrong"])
async def test_refused_without_the_right_credentials(registry: Registry, call: Call, credentials: Credentials) -> None:
    error = "invalid_token" if credentials is _wrong and registry.mode == "token" else None
    await assert_refused(registry, call, await credentials(registry, call), 401, "UNAUTHORIZED",
                         expected_challenge(registry, call, error))


async def test_unknown_user_is_refused_like_a_wrong_password(registry: Registry) -> None:
    call = CALLS["tags GET"]
    headers = basic("mallory", "s3cret")
    if registry.mode == "token":
        r = await registry.client.get("/auth/token", params={"service": SERVICE, "scope": PULL}, headers=headers)
        assert (r.status, r.headers["WWW-Authenticate"]) == (401, f'Basic realm="{ISSUER}"')
        return
    await assert_refused(registry, call, headers, 401, "UNAUTHORIZED", expected_challenge(registry, call))


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_right_credentials_get_through(registry: Registry, call: Call) -> None:
    if registry.mode == "htpasswd":
        headers = basic("alice", "s3cret")
    else:
        challenge = await send(registry, call, {})  # the scope comes from the challenge, as for Docker
        assert challenge.status == 401
        headers = bearer(await fetch_token(registry.client, "alice", "s3cret", call.scope))
    r = await send(registry, call, headers)
    assert r.status == call.ok, await r.text()
    assert "WWW-Authenticate" not in r.headers


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_insufficient_scope_is_denied(token_registry: Registry, call: Call) -> None:
    registry = token_registry
    # carol's rules give her nothing in alice/app; her token is valid but carries no access there.
    headers = bearer(await fetch_token(registry.client, "carol", "c4rol", call.scope))
    if call.scope is None or call.scope.startswith("registry:"):
        r = await send(registry, call, headers)
        assert r.status == 200  # /v2/ asks no access; the catalog is filtered instead (below)
        return
    await assert_refused(registry, call, headers, 403, "DENIED",
                         expected_challenge(registry, call, "insufficient_scope"))


async def test_a_pull_token_cannot_push_or_delete(token_registry: Registry) -> None:
    registry = token_registry
    # bob may pull alice/* (group readers): his token for push and delete carries pull only.
    token = await fetch_token(registry.client, "bob", "pyp4ss", f"{PUSH} {DELETE}")
    assert (await registry.client.get("/v2/alice/app/manifests/latest", headers=bearer(token))).status == 200
    for name in ("manifest PUT", "upload POST", "manifest DELETE", "blob DELETE"):
        call = CALLS[name]
        await assert_refused(registry, call, bearer(token), 403, "DENIED",
                             expected_challenge(registry, call, "insufficient_scope"))


@pytest.mark.parametrize(("user", "password", "expected"), [
    ("alice", "s3cret", ["alice/app", "public/app"]),
    ("bob", "pyp4ss", ["alice/app", "bob/x", "public/app"]),
    ("carol", "c4rol", ["carol/y", "public/app"]),
])
async def test_catalog_lists_what_the_caller_may_pull(registry: Registry, user: str, password: str,
                                                      expected: list[str]) -> None:
    if registry.mode == "htpasswd":
        headers = basic(user, password)
        expected = ["alice/app", "bob/x", "carol/y", "public/app"]  # every user may pull everything
    else:
        headers = bearer(await fetch_token(registry.client, user, password, "registry:catalog:*"))
    r = await registry.client.get("/v2/_catalog", headers=headers)
    assert r.status == 200
    assert await r.json() == {"repositories": expected}
    # Paging counts only what is listed.
    r = await registry.client.get("/v2/_catalog?n=1", headers=headers)
    assert await r.json() == {"repositories": expected[:1]}
    assert r.headers["Link"] == f'</v2/_catalog?last={expected[0]}&n=1>; rel="next"'


async def test_anonymous_catalog_token_lists_public_repositories(token_registry: Registry) -> None:
    registry = token_registry
    r = await registry.client.get("/auth/token", params={"service": SERVICE, "scope": "registry:catalog:*"})
    token = (await r.json())["token"]
    r = await registry.client.get("/v2/_catalog", headers=bearer(token))
    assert await r.json() == {"repositories": ["public/app"]}


async def test_mount_from_a_repository_the_caller_may_not_pull_falls_back_to_an_upload(registry: Registry) -> None:
    # bob/x's blobs may not be mounted by alice in token mode (she may not pull bob/x): a plain session starts,
    # exactly as if the blob were not there. public/app she may pull, so that mount succeeds.
    layer = b"layer-" + b"bob/x" * 100
    public_layer = b"layer-" + b"public/app" * 100
    scope = f"{PUSH} repository:bob/x:pull repository:public/app:pull"
    if registry.mode == "htpasswd":
        headers = basic("alice", "s3cret")
    else:
        headers = bearer(await fetch_token(registry.client, "alice", "s3cret", scope))
    r = await registry.client.post(f"/v2/alice/app/blobs/uploads/?mount={digest_of(layer)}&from=bob/x",
                                   headers=headers)
    assert r.status == (201 if registry.mode == "htpasswd" else 202)
    linked = await registry.plain.head(f"/v2/alice/app/blobs/{digest_of(layer)}")
    assert linked.status == (200 if registry.mode == "htpasswd" else 404)
    r = await registry.client.post(f"/v2/alice/app/blobs/uploads/?mount={digest_of(public_layer)}&from=public/app",
                                   headers=headers)
    assert r.status == 201
    assert (await registry.plain.head(f"/v2/alice/app/blobs/{digest_of(public_layer)}")).status == 200


async def test_health_check_needs_no_credentials(registry: Registry) -> None:
    r = await registry.client.get("/")
    assert r.status == 200
    assert "WWW-Authenticate" not in r.headers


async def test_unknown_routes_and_methods_reveal_nothing(registry: Registry) -> None:
    r = await registry.client.get("/v2/alice/app/nothing-here")
    assert (r.status, (await r.json())["errors"][0]["code"]) == (404, "NOT_FOUND")
    r = await registry.client.post("/v2/alice/app/tags/list")
    assert (r.status, (await r.json())["errors"][0]["code"]) == (405, "UNSUPPORTED")


async def test_refusing_an_upload_body_closes_the_connection(registry: Registry) -> None:
    # The server does not read a refused caller's upload: it answers and closes instead.
    r = await send(registry, CALLS["upload PATCH"], {})
    assert r.status == 401
    assert r.headers.get("Connection", "").lower() == "close"


def test_every_repository_route_declares_what_it_needs() -> None:
    from regctl.registry.routes import ROUTES

    for route in ROUTES:
        for method_name, method in route.methods.items():
            if "(?P<name>" in route.pattern.pattern:
                assert method.actions, f"{route.name} {method_name} declares no access"
            assert set(method.actions) <= {"pull", "push", "delete"}


def test_token_claims_are_what_the_spec_describes(tmp_path) -> None:
    # Decoded without verification: only the shape is checked here (verification is test_token.py's job).
    config = _config("token", tmp_path)
    from regctl.registry.auth.issuer import TokenIssuer

    assert config.tokenserver is not None
    issued = TokenIssuer.from_config(config.tokenserver).issue("alice", [PUSH])
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert {k: claims[k] for k in ("iss", "sub", "aud")} == {"iss": ISSUER, "sub": "alice", "aud": SERVICE}
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]
    assert json.loads(base64.urlsafe_b64decode(issued.token.split(".")[0] + "=="))["alg"] == "ES256"
