"""Every API route by every kind of caller, against a real ``regctl serve`` over verified TLS (test CA only).

- htpasswd (``auth.htpasswd``), run against regctl and against Distribution 2.8 (which proves the table):
  no credentials, a wrong password, an unknown user → 401 with ``WWW-Authenticate: Basic realm="..."``;
  the right password → the route's normal answer.
- token (``auth.token`` + regctl's own ``tokenserver``): the client does what Docker does, asks without
  credentials, reads the ``Bearer realm=,service=,scope=`` challenge, fetches a token for exactly that scope
  with its login and retries. No token, or a token signed by a key the registry does not trust → 401;
  a token whose access does not cover the route (``stranger``: no rule at all; ``reader``: pull only) →
  403 DENIED with ``error="insufficient_scope"``; an allowed token → the normal answer.

What is asserted is what a caller notices: the status, the challenge a client follows, that a refusal carries
none of the data (no blob bytes, tags, repository names, manifest contents, upload state) and that a refused
write or delete changed nothing, which an authorised client then checks.

Every test seeds a repository of its own (an image tagged ``v1`` and a secret tag, a referrer, an upload in
progress), so destructive cells never meet.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
import pytest
from helpers.images import OCI_INDEX, OCI_MANIFEST, Image, make_image, sha256_digest
from helpers.registry_api import MANIFEST_TYPES, RegistryClient, Response, basic_auth
from helpers.secure import TlsFiles, TokenSetup, fetch_token, make_tls_files, parse_challenge, write_htpasswd
from helpers.servers import RegistryFactory, RegistryProcess

REALM = "regctl matrix realm"
PASSWORDS = {"admin": "admin-pw-1", "reader": "reader-pw-2", "stranger": "stranger-pw-3"}
DISTRIBUTION_REFERRERS = "Distribution 2.8 has no referrers API (distribution-spec 1.1)"
EMPTY_CONFIG = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
# A refusal must carry none of these: they reveal content, digests or upload state.
DATA_HEADERS = ("Docker-Content-Digest", "Location", "Range", "Docker-Upload-UUID", "Link", "OCI-Subject")


# -- content every test gets ------------------------------------------------------------------------------
@dataclass
class Seed:
    repo: str
    image: Image
    secret_tag: str
    referrer: bytes
    upload: str  # the upload's Location, 5 bytes written
    layer: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.layer = self.image.layers[0]

    @property
    def layer_digest(self) -> str:
        return sha256_digest(self.layer)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.image.config)

    @property
    def referrer_digest(self) -> str:
        return sha256_digest(self.referrer)

    def upload_path(self, digest: str | None = None) -> str:
        if digest is None:
            return self.upload
        sep = "&" if "?" in self.upload else "?"
        return f"{self.upload}{sep}digest={urllib.parse.quote(digest)}"


UPLOAD_START = b"hello"
UPLOAD_MORE = b"world"


def new_repo() -> str:
    return f"matrix/{secrets.token_hex(4)}"


def seed(admin: RegistryClient, repo: str) -> Seed:
    marker = secrets.token_hex(16)
    image = make_image({"secret.txt": f"secret layer {marker}\n".encode()}, description=f"matrix {marker}")
    for blob in image.blobs.values():
        admin.push_blob(repo, blob)
    admin.push_manifest(repo, "v1", image.manifest, OCI_MANIFEST)
    secret_tag = f"hidden-{secrets.token_hex(4)}"
    admin.push_manifest(repo, secret_tag, image.manifest, OCI_MANIFEST)
    admin.push_blob(repo, EMPTY_CONFIG)
    referrer = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.regctl.matrix",
        "config": {"mediaType": EMPTY_TYPE, "digest": sha256_digest(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": EMPTY_TYPE, "digest": sha256_digest(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)}],
        "subject": image.descriptor(),
    }).encode()
    admin.push_manifest(repo, sha256_digest(referrer), referrer, OCI_MANIFEST)
    start = admin.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert start.status == 202, start.body
    location = urllib.parse.urljoin(admin.base_url + "/", start.headers["Location"])
    patched = admin.request("PATCH", location, data=UPLOAD_START,
                            headers={"Content-Type": "application/octet-stream"})
    assert patched.status == 202, patched.body
    location = urllib.parse.urljoin(admin.base_url + "/", patched.headers["Location"])
    return Seed(repo, image, secret_tag, referrer, location)


# -- the routes -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    id: str
    method: str
    path: Callable[[Seed], str]
    # What the route needs: "" (a login), "catalog", or the repository actions of the challenge's scope.
    needs: str
    ok: int
    data: Callable[[Seed], bytes | None] = lambda s: None
    headers: Callable[[Seed], dict[str, str]] = lambda s: {}
    # Proves an authorised answer carried the data / did the change (resp, admin client).
    served: Callable[[Seed, Response, RegistryClient], None] = lambda s, r, a: None
    # Proves a refused request changed nothing (admin client).
    unchanged: Callable[[Seed, RegistryClient], None] = lambda s, a: None
    # What a refusal must not contain.
    secrets: Callable[[Seed], list[bytes]] = lambda s: []

    @property
    def writes(self) -> bool:
        return "push" in self.needs or "delete" in self.needs


def _manifest_headers(s: Seed) -> dict[str, str]:
    return {"Accept": ", ".join(MANIFEST_TYPES)}


def _served_catalog(s: Seed, r: Response, a: RegistryClient) -> None:
    assert s.repo in r.json()["repositories"], r.body  # type: ignore[index]


def _served_tags(s: Seed, r: Response, a: RegistryClient) -> None:
    assert sorted(r.json()["tags"]) == sorted(["v1", s.secret_tag]), r.body  # type: ignore[index]


def _served_manifest(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.body == s.image.manifest


def _served_digest(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.headers.get("Docker-Content-Digest") == s.image.digest, dict(r.headers)


def _served_put(s: Seed, r: Response, a: RegistryClient) -> None:
    got = a.get_manifest(s.repo, "pushed")
    assert got.status == 200 and got.body == s.image.manifest


def _served_delete_manifest(s: Seed, r: Response, a: RegistryClient) -> None:
    assert a.get_manifest(s.repo, s.image.digest, method="HEAD").status == 404


def _served_blob(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.body == s.layer


def _served_blob_head(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.headers.get("Content-Length") == str(len(s.layer)), dict(r.headers)


def _served_delete_blob(s: Seed, r: Response, a: RegistryClient) -> None:
    assert a.get_blob(s.repo, s.layer_digest, method="HEAD").status == 404


def _served_upload_start(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.headers.get("Location"), dict(r.headers)


def _served_patch(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.headers.get("Range") == f"0-{len(UPLOAD_START + UPLOAD_MORE) - 1}", dict(r.headers)


def _served_finish(s: Seed, r: Response, a: RegistryClient) -> None:
    got = a.get_blob(s.repo, sha256_digest(UPLOAD_START))
    assert got.status == 200 and got.body == UPLOAD_START


def _served_upload_status(s: Seed, r: Response, a: RegistryClient) -> None:
    assert r.headers.get("Range") == f"0-{len(UPLOAD_START) - 1}", dict(r.headers)


def _served_cancel(s: Seed, r: Response, a: RegistryClient) -> None:
    assert a.request("GET", s.upload_path()).status == 404


def _served_referrers(s: Seed, r: Response, a: RegistryClient) -> None:
    digests = [m["digest"] for m in r.json()["manifests"]]  # type: ignore[index]
    assert digests == [s.referrer_digest], r.body


def _upload_untouched(s: Seed, a: RegistryClient) -> None:
    status = a.request("GET", s.upload_path())
    assert status.status == 204 and status.headers.get("Range") == f"0-{len(UPLOAD_START) - 1}", (
        f"a refused request changed the upload: HTTP {status.status} Range {status.headers.get('Range')}")


ROUTES = [
    Route("base-GET", "GET", lambda s: "/v2/", "", 200),
    Route("base-HEAD", "HEAD", lambda s: "/v2/", "", 200),
    Route("catalog-GET", "GET", lambda s: "/v2/_catalog", "catalog", 200, served=_served_catalog,
          secrets=lambda s: [s.repo.encode()]),
    Route("tags-GET", "GET", lambda s: f"/v2/{s.repo}/tags/list", "pull", 200, served=_served_tags,
          secrets=lambda s: [s.secret_tag.encode()]),
    Route("manifest-GET", "GET", lambda s: f"/v2/{s.repo}/manifests/v1", "pull", 200, headers=_manifest_headers,
          served=_served_manifest, secrets=lambda s: [s.config_digest.encode(), s.image.digest.encode()]),
    Route("manifest-HEAD", "HEAD", lambda s: f"/v2/{s.repo}/manifests/v1", "pull", 200, headers=_manifest_headers,
          served=_served_digest),
    Route("manifest-PUT", "PUT", lambda s: f"/v2/{s.repo}/manifests/pushed", "pull,push", 201,
          data=lambda s: s.image.manifest, headers=lambda s: {"Content-Type": OCI_MANIFEST}, served=_served_put,
          unchanged=lambda s, a: _expect(a.get_manifest(s.repo, "pushed", method="HEAD").status, 404,
                                         "a refused manifest PUT created the tag")),
    Route("manifest-DELETE", "DELETE", lambda s: f"/v2/{s.repo}/manifests/{s.image.digest}", "delete", 202,
          served=_served_delete_manifest,
          unchanged=lambda s, a: _expect(a.get_manifest(s.repo, s.image.digest, method="HEAD").status, 200,
                                         "a refused manifest DELETE removed the manifest")),
    Route("blob-GET", "GET", lambda s: f"/v2/{s.repo}/blobs/{s.layer_digest}", "pull", 200, served=_served_blob,
          secrets=lambda s: [s.layer]),
    Route("blob-HEAD", "HEAD", lambda s: f"/v2/{s.repo}/blobs/{s.layer_digest}", "pull", 200,
          served=_served_blob_head),
    Route("blob-DELETE", "DELETE", lambda s: f"/v2/{s.repo}/blobs/{s.layer_digest}", "delete", 202,
          served=_served_delete_blob,
          unchanged=lambda s, a: _expect(a.get_blob(s.repo, s.layer_digest, method="HEAD").status, 200,
                                         "a refused blob DELETE removed the blob")),
    Route("uploads-POST", "POST", lambda s: f"/v2/{s.repo}/blobs/uploads/", "pull,push", 202,
          served=_served_upload_start),
    Route("upload-PATCH", "PATCH", lambda s: s.upload_path(), "pull,push", 202, data=lambda s: UPLOAD_MORE,
          headers=lambda s: {"Content-Type": "application/octet-stream"}, served=_served_patch,
          unchanged=_upload_untouched),
    Route("upload-PUT", "PUT", lambda s: s.upload_path(sha256_digest(UPLOAD_START)), "pull,push", 201,
          data=lambda s: b"", headers=lambda s: {"Content-Type": "application/octet-stream"},
          served=_served_finish,
          unchanged=lambda s, a: (_upload_untouched(s, a), _expect(
              a.get_blob(s.repo, sha256_digest(UPLOAD_START), method="HEAD").status, 404,
              "a refused upload PUT created the blob"))),
    Route("upload-GET", "GET", lambda s: s.upload_path(), "pull,push", 204, served=_served_upload_status),
    Route("upload-DELETE", "DELETE", lambda s: s.upload_path(), "pull,push", 204, served=_served_cancel,
          unchanged=_upload_untouched),
    Route("referrers-GET", "GET", lambda s: f"/v2/{s.repo}/referrers/{s.image.digest}", "pull", 200,
          headers=lambda s: {"Accept": OCI_INDEX}, served=_served_referrers,
          secrets=lambda s: [s.referrer_digest.encode()]),
]


def _expect(got: int, want: int, message: str) -> None:
    assert got == want, f"{message} (HTTP {got}, expected {want})"


def call(client: RegistryClient, route: Route, s: Seed, headers: dict[str, str] | None = None) -> Response:
    return client.request(route.method, route.path(s), data=route.data(s),
                          headers={**route.headers(s), **(headers or {})})


def check_refusal(resp: Response, route: Route, s: Seed, status: int, code: str) -> None:
    """The refusal a client sees: status, error code, the API version header, and nothing of the data."""
    where = f"{route.method} {route.path(s)}"
    assert resp.status == status, f"{where}: HTTP {resp.status}, expected {status}: {resp.body[:300]!r}"
    assert resp.headers.get("Docker-Distribution-API-Version") == "registry/2.0", f"{where}: {dict(resp.headers)}"
    leaked = [h for h in DATA_HEADERS if resp.headers.get(h)]
    assert leaked == [], f"{where}: the refusal carries {leaked}: {dict(resp.headers)}"
    if route.method != "HEAD":
        codes = [e.get("code") for e in json.loads(resp.body)["errors"]]
        assert codes == [code], f"{where}: error codes {codes}, expected [{code!r}]"
    for secret in route.secrets(s):
        assert secret not in resp.body, f"{where}: the refusal reveals {secret[:60]!r}"


def check_served(resp: Response, route: Route, s: Seed, admin: RegistryClient) -> None:
    where = f"{route.method} {route.path(s)}"
    assert resp.status == route.ok, f"{where}: HTTP {resp.status}, expected {route.ok}: {resp.body[:300]!r}"
    route.served(s, resp, admin)


# == htpasswd =============================================================================================
@dataclass
class BasicServer:
    server: RegistryProcess
    tls: TlsFiles

    def client(self, user: str | None = None, password: str | None = None) -> RegistryClient:
        headers = basic_auth(user, password or "") if user is not None else {}
        return RegistryClient(self.server.url, context=self.tls.context(), headers=headers)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("matrix-tls"), ("localhost", "127.0.0.1"))


@pytest.fixture(scope="module", params=[pytest.param("regctl", marks=pytest.mark.regctl),
                                        pytest.param("distribution", marks=pytest.mark.distribution)])
def basic_server(request: pytest.FixtureRequest, registry_factory: RegistryFactory, tls_files: TlsFiles,
                 tmp_path_factory: pytest.TempPathFactory) -> BasicServer:
    htpasswd = write_htpasswd(tmp_path_factory.mktemp("matrix-auth") / "htpasswd", PASSWORDS)
    server = registry_factory.start(request.param, extra={
        "http": {"tls": tls_files.server_tls()},
        "auth": {"htpasswd": {"realm": REALM, "path": str(htpasswd)}},
    })
    return BasicServer(server, tls_files)


BASIC_CALLERS = {
    "none": None,
    "wrong-password": ("admin", "not-the-password"),
    "unknown-user": ("nobody", PASSWORDS["admin"]),
    "right": ("admin", PASSWORDS["admin"]),
}


@pytest.mark.parametrize("caller", list(BASIC_CALLERS))
@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_htpasswd_route(basic_server: BasicServer, route: Route, caller: str, request: pytest.FixtureRequest):
    if basic_server.server.kind == "distribution" and route.id.startswith("referrers"):
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=DISTRIBUTION_REFERRERS))
    admin = basic_server.client("admin", PASSWORDS["admin"])
    s = seed(admin, new_repo())
    creds = BASIC_CALLERS[caller]
    resp = call(basic_server.client(*creds) if creds else basic_server.client(), route, s)
    if caller == "right":
        check_served(resp, route, s, admin)
        return
    check_refusal(resp, route, s, 401, "UNAUTHORIZED")
    assert resp.headers.get("WWW-Authenticate") == f'Basic realm="{REALM}"', dict(resp.headers)
    route.unchanged(s, admin)


# == token ================================================================================================
@dataclass
class TokenServer:
    server: RegistryProcess
    tls: TlsFiles
    token: TokenSetup

    @property
    def realm(self) -> str:
        return self.token.realm(self.server)

    def client(self, bearer: str | None = None) -> RegistryClient:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return RegistryClient(self.server.url, context=self.tls.context(), headers=headers)

    def get_token(self, user: str, scopes: list[str]) -> str:
        status, body, _ = fetch_token(self.server.url, self.tls.context(), scopes, user=user,
                                      password=PASSWORDS[user], service=self.token.service)
        assert status == 200 and body.get("token"), f"token for {user} {scopes}: HTTP {status} {body}"
        return body["token"]

    def admin(self, repo: str) -> RegistryClient:
        """A client with an admin token for everything on ``repo`` (the tests' own checks)."""
        return self.client(self.get_token("admin", [f"repository:{repo}:pull,push,delete", "registry:catalog:*"]))


@pytest.fixture(scope="module")
def token_server(registry_factory: RegistryFactory, tls_files: TlsFiles,
                 tmp_path_factory: pytest.TempPathFactory) -> TokenServer:
    directory = tmp_path_factory.mktemp("matrix-token")
    setup = TokenSetup(
        directory, "localhost", write_htpasswd(directory / "htpasswd", PASSWORDS),
        rules=[
            {"subjects": ["admin"], "repositories": ["*"], "actions": ["*"]},
            {"subjects": ["reader"], "repositories": ["matrix/*"], "actions": ["pull"]},
        ],
        groups={},
    )
    server = registry_factory.start("regctl", extra=lambda proc: {"http": {"tls": tls_files.server_tls()},
                                                                  **setup.extra(proc)})
    return TokenServer(server, tls_files, setup)


def expected_scope(route: Route, s: Seed) -> str | None:
    if route.needs == "":
        return None
    if route.needs == "catalog":
        return "registry:catalog:*"
    return f"repository:{s.repo}:{route.needs}"


TOKEN_CALLERS = ("none", "forged", "stranger", "reader", "right")


def _allowed(caller: str, route: Route) -> bool:
    """Whether the rules let ``caller`` use ``route`` on a matrix/* repository."""
    return caller == "right" or (caller in ("stranger", "reader") and route.needs in ("", "catalog")) or (
        caller == "reader" and route.needs == "pull")


@pytest.mark.regctl
@pytest.mark.parametrize("caller", TOKEN_CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_token_route(token_server: TokenServer, route: Route, caller: str):
    repo = new_repo()
    admin = token_server.admin(repo)
    s = seed(admin, repo)
    probe = token_server.client()
    scope = expected_scope(route, s)

    # 1. No credentials: what every client sees first, and follows.
    first = call(probe, route, s)
    check_refusal(first, route, s, 401, "UNAUTHORIZED")
    scheme, params = parse_challenge(first.headers.get("WWW-Authenticate"))
    want = {"realm": token_server.realm, "service": token_server.token.service}
    if scope:
        want["scope"] = scope
    assert (scheme, params) == ("bearer", want), first.headers.get("WWW-Authenticate")
    if caller == "none":
        route.unchanged(s, admin)
        return

    if caller == "forged":
        access = [{"type": "repository", "name": s.repo, "actions": ["pull", "push", "delete"]},
                  {"type": "registry", "name": "catalog", "actions": ["*"]}]
        resp = call(token_server.client(token_server.token.forged(access)), route, s)
        check_refusal(resp, route, s, 401, "UNAUTHORIZED")
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate"))
        assert scheme == "bearer" and params.get("error") == "invalid_token", resp.headers.get("WWW-Authenticate")
        route.unchanged(s, admin)
        return

    # 2. A token for exactly the challenge's scope, with the caller's login, as Docker asks for it.
    user = {"stranger": "stranger", "reader": "reader", "right": "admin"}[caller]
    resp = call(token_server.client(token_server.get_token(user, [scope] if scope else [])), route, s)
    if _allowed(caller, route):
        if route.needs == "catalog" and caller == "stranger":
            # The catalog lists only what the caller may pull: nothing of matrix/*.
            assert resp.status == 200, resp.body
            assert s.repo not in resp.json()["repositories"], resp.body  # type: ignore[index]
            return
        check_served(resp, route, s, admin)
        return
    check_refusal(resp, route, s, 403, "DENIED")
    scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate"))
    assert (scheme, params) == ("bearer", {**want, "error": "insufficient_scope"}), (
        resp.headers.get("WWW-Authenticate"))
    route.unchanged(s, admin)


# -- the token endpoint itself ----------------------------------------------------------------------------
@pytest.mark.regctl
@pytest.mark.parametrize(("user", "password"), [("admin", "wrong"), ("nobody", "whatever"), (None, None)],
                         ids=["wrong-password", "unknown-user", "no-credentials"])
def test_token_endpoint_refuses_bad_logins(token_server: TokenServer, user, password):
    status, body, challenge = fetch_token(token_server.server.url, token_server.tls.context(),
                                          ["repository:matrix/x:pull"], user=user, password=password)
    assert status == 401, body
    assert "token" not in body and "access_token" not in body, body
    scheme, params = parse_challenge(challenge)
    assert scheme == "basic" and params.get("realm"), challenge


@pytest.mark.regctl
def test_token_endpoint_grants_only_what_the_rules_allow(token_server: TokenServer):
    ctx = token_server.tls.context()
    url = token_server.server.url
    scopes = ["repository:matrix/app:pull,push,delete", "repository:other/app:pull"]
    granted = {}
    for user in ("admin", "reader", "stranger"):
        status, body, _ = fetch_token(url, ctx, scopes, user=user, password=PASSWORDS[user])
        assert status == 200, body
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        granted[user] = {(a["name"], tuple(sorted(a["actions"]))) for a in claims["access"]}
    assert granted["reader"] == {("matrix/app", ("pull",))}
    assert granted["stranger"] == set()
    assert ("matrix/app", ("delete", "pull", "push")) in granted["admin"], granted["admin"]


@pytest.mark.regctl
def test_token_endpoint_oauth2_post_form(token_server: TokenServer):
    """The form ``docker login`` and the engine use (RFC 6749 password grant), right and wrong password."""
    client = RegistryClient(token_server.server.url, context=token_server.tls.context())
    form = {"grant_type": "password", "service": token_server.token.service, "client_id": "docker",
            "scope": "repository:matrix/app:pull", "username": "reader"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    ok = client.request("POST", "/auth/token", data=urllib.parse.urlencode(
        {**form, "password": PASSWORDS["reader"]}).encode(), headers=headers)
    assert ok.status == 200 and ok.json().get("access_token"), ok.body  # type: ignore[union-attr]
    bad = client.request("POST", "/auth/token", data=urllib.parse.urlencode(
        {**form, "password": "wrong"}).encode(), headers=headers)
    assert bad.status == 401, bad.body
    assert b"token" not in bad.body.replace(b"token_", b""), bad.body

