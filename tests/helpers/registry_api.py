"""A deliberately small HTTP client for the Distribution API, used to check what real clients left behind.

It never raises on an HTTP status: tests assert on ``Response.status`` themselves. Redirects are followed
(a registry may redirect blob GETs to its storage) and proxies from the environment are ignored.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

from helpers.images import sha256_digest

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)

    @property
    def digest(self) -> str | None:
        return self.headers.get("Docker-Content-Digest")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The ``Authorization`` header of HTTP Basic authentication."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class RegistryClient:
    """``context`` verifies an HTTPS server (e.g. against a test CA only); ``headers`` go with every request
    (e.g. :func:`basic_auth` or a Bearer token) unless a request overrides them."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 60.0,
        *,
        context: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def request(
        self, method: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        url = path if path.startswith("http") else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers={**self.headers, **(headers or {})})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())

    # -- reads -----------------------------------------------------------------------------------------
    def get_manifest(self, repo: str, ref: str, *, method: str = "GET") -> Response:
        return self.request(method, f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(MANIFEST_TYPES)})

    def get_blob(self, repo: str, digest: str, *, method: str = "GET") -> Response:
        return self.request(method, f"/v2/{repo}/blobs/{digest}")

    def tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list")
        assert resp.status == 200, f"GET tags/list for {repo}: HTTP {resp.status} {resp.body[:500]!r}"
        return sorted(resp.json().get("tags") or [])  # type: ignore[union-attr]

    def catalog(self) -> list[str]:
        resp = self.request("GET", "/v2/_catalog?n=1000")
        assert resp.status == 200, f"GET _catalog: HTTP {resp.status} {resp.body[:500]!r}"
        return sorted(resp.json().get("repositories") or [])  # type: ignore[union-attr]

    # -- writes (test setup only; the real clients are what the tests exercise) ---------------------------
    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256_digest(data)
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert start.status == 202, f"POST blobs/uploads: HTTP {start.status} {start.body[:500]!r}"
        location = urllib.parse.urljoin(self.base_url + "/", start.headers["Location"])
        sep = "&" if "?" in location else "?"
        done = self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status == 201, f"PUT upload {digest}: HTTP {done.status} {done.body[:500]!r}"
        return digest

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> Response:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type})
        assert resp.status == 201, f"PUT manifest {repo}:{ref}: HTTP {resp.status} {resp.body[:500]!r}"
        return resp
