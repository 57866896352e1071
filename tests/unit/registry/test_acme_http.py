"""The ``acme.httpaddr`` listener's application: HTTP-01 token files, 404 for anything else under the challenge
path (never a file outside the directory), and a 308 to HTTPS for every other request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from regctl.registry.acme_http import create_challenge_app

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEY_AUTHORIZATION = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


@pytest.fixture
def challenges(tmp_path: Path) -> Path:
    directory = tmp_path / "acme-challenge"
    directory.mkdir()
    (directory / TOKEN).write_text(KEY_AUTHORIZATION)
    (tmp_path / "secret").write_text("not for you")
    return directory


@pytest.fixture
async def client(aiohttp_client, challenges: Path) -> TestClient:
    return await aiohttp_client(create_challenge_app(str(challenges), scheme="https", port=5443))


async def raw_get(client: TestClient, target: str, host: str = "registry.example.com") -> tuple[int, bytes]:
    """Send ``target`` byte for byte (client libraries would normalize ``..`` away); (status, body)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_token_is_served_as_text(client: TestClient) -> None:
    response = await client.get(f"/.well-known/acme-challenge/{TOKEN}")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == KEY_AUTHORIZATION


async def test_head_of_a_token(client: TestClient) -> None:
    response = await client.head(f"/.well-known/acme-challenge/{TOKEN}")
    assert (response.status, response.content_type) == (200, "text/plain")
    assert response.headers["Content-Length"] == str(len(KEY_AUTHORIZATION))


async def test_token_written_after_start_is_served_and_removed_one_is_gone(
    client: TestClient, challenges: Path
) -> None:
    (challenges / "new_token-1").write_text("new.key-authorization")
    assert await (await client.get("/.well-known/acme-challenge/new_token-1")).text() == "new.key-authorization"
    (challenges / "new_token-1").unlink()
    assert (await client.get("/.well-known/acme-challenge/new_token-1")).status == 404


@pytest.mark.parametrize(
    "token",
    ["unknown-token", "", "a.b", "..", "%2e%2e", "..%2Fsecret", "%2E%2E%2Fsecret", "a%20b", "token?x=1/../secret"],
)
async def test_anything_but_a_known_token_is_404(client: TestClient, token: str) -> None:
    status, body = await raw_get(client, f"/.well-known/acme-challenge/{token}")
    assert status == 404
    assert b"not for you" not in body


@pytest.mark.parametrize(
    "target",
    ["/.well-known/acme-challenge/../secret", "/.well-known/acme-challenge/../../secret",
     "/.well-known/acme-challenge//etc/passwd", "/.well-known/acme-challenge/%2e%2e/secret"],
)
async def test_traversal_never_reads_outside_the_directory(client: TestClient, target: str) -> None:
    status, body = await raw_get(client, target)
    assert status in (404, 308)
    assert b"not for you" not in body and b"root:" not in body


async def test_without_a_challenge_directory_every_token_is_404(aiohttp_client) -> None:
    client = await aiohttp_client(create_challenge_app(None, scheme="https", port=443))
    assert (await client.get(f"/.well-known/acme-challenge/{TOKEN}")).status == 404


@pytest.mark.parametrize(
    ("host", "port", "location"),
    [
        ("registry.example.com", 5443, "https://registry.example.com:5443/v2/library/alpine/tags/list?n=10"),
        ("Registry.Example.com:80", 443, "https://registry.example.com/v2/library/alpine/tags/list?n=10"),
        ("192.0.2.7:8080", 443, "https://192.0.2.7/v2/library/alpine/tags/list?n=10"),
        ("[2001:db8::1]:80", 5443, "https://[2001:db8::1]:5443/v2/library/alpine/tags/list?n=10"),
    ],
)
async def test_everything_else_is_redirected_to_https(aiohttp_client, host: str, port: int, location: str) -> None:
    client = await aiohttp_client(create_challenge_app(None, scheme="https", port=port))
    response = await client.get("/v2/library/alpine/tags/list?n=10", headers={"Host": host}, allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == location


async def test_redirect_uses_http_host_when_configured(aiohttp_client) -> None:
    app = create_challenge_app(None, scheme="https", port=5000, base_url="https://registry.example.com/")
    client = await aiohttp_client(app)
    response = await client.get("/v2/", headers={"Host": "10.0.0.5"}, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (308, "https://registry.example.com/v2/")


async def test_a_push_to_the_plain_port_is_redirected_keeping_the_method(client: TestClient) -> None:
    response = await client.post("/v2/library/alpine/blobs/uploads/", allow_redirects=False)
    assert response.status == 308  # 308, unlike 301, tells clients to repeat the POST
    assert response.headers["Location"].startswith("https://127.0.0.1:5443/v2/library/alpine/blobs/uploads/")
    # A write to a token path is not a challenge fetch either.
    response = await client.put(f"/.well-known/acme-challenge/{TOKEN}", data=b"x", allow_redirects=False)
    assert response.status == 308


@pytest.mark.parametrize("host", ["", "evil.example.com/path", "a b"])
async def test_missing_or_invalid_host_is_400(client: TestClient, host: str) -> None:
    status, _ = await raw_get(client, "/v2/", host=host)
    assert status == 400
