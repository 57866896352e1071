"""Blob pulls (with ranges), existence checks and deletes."""

from __future__ import annotations

import hashlib

import pytest

from tests.unit.registry.conftest import digest_of, error_code, push_blob

DATA = bytes(range(256)) * 40  # 10 KiB


async def test_get_and_head(client):
    digest = await push_blob(client, "foo/bar", DATA)
    r = await client.get(f"/v2/foo/bar/blobs/{digest}")
    assert r.status == 200
    assert await r.read() == DATA
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Content-Type"] == "application/octet-stream"
    h = await client.head(f"/v2/foo/bar/blobs/{digest}")
    assert h.status == 200
    assert int(h.headers["Content-Length"]) == len(DATA)
    assert h.headers["Docker-Content-Digest"] == digest
    assert await h.read() == b""


@pytest.mark.parametrize("header,status,expected", [
    ("bytes=0-9", 206, DATA[:10]),
    ("bytes=100-", 206, DATA[100:]),
    ("bytes=-16", 206, DATA[-16:]),
    ("bytes=10000-99999", 206, DATA[10000:]),
])
async def test_range(client, header, status, expected):
    digest = await push_blob(client, "foo", DATA)
    r = await client.get(f"/v2/foo/blobs/{digest}", headers={"Range": header})
    assert r.status == status
    assert await r.read() == expected
    first = len(DATA) - len(expected) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
    assert r.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0", "bytes=5-2"])
async def test_unsatisfiable_range(client, header):
    digest = await push_blob(client, "foo", DATA)
    r = await client.get(f"/v2/foo/blobs/{digest}", headers={"Range": header})
    assert r.status == 416
    assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_blob_is_only_served_where_linked(client):
    digest = await push_blob(client, "one", DATA)
    r = await client.get(f"/v2/two/blobs/{digest}")
    assert r.status == 404
    assert await error_code(r) == "BLOB_UNKNOWN"


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "nodigest"])
async def test_invalid_digest(client, digest):
    r = await client.get(f"/v2/foo/blobs/{digest}")
    assert r.status == 400
    assert await error_code(r) == "DIGEST_INVALID"


async def test_sha512_blob(client):
    digest = digest_of(DATA, "sha512")
    r = await client.post(f"/v2/foo/blobs/uploads/?digest={digest}", data=DATA)
    assert r.status == 201
    assert r.headers["Docker-Content-Digest"] == digest
    r = await client.get(f"/v2/foo/blobs/{digest}")
    assert hashlib.sha512(await r.read()).hexdigest() == digest.split(":")[1]


async def test_delete_disabled_by_default(make_client):
    client = await make_client(delete=False)
    digest = await push_blob(client, "foo", DATA)
    r = await client.delete(f"/v2/foo/blobs/{digest}")
    assert r.status == 405
    assert await error_code(r) == "UNSUPPORTED"
    assert (await client.get(f"/v2/foo/blobs/{digest}")).status == 200


async def test_delete_unlinks_only_this_repository(client):
    digest = await push_blob(client, "foo", DATA)
    await push_blob(client, "bar", DATA)
    r = await client.delete(f"/v2/foo/blobs/{digest}")
    assert r.status == 202
    assert (await client.head(f"/v2/foo/blobs/{digest}")).status == 404
    assert (await client.head(f"/v2/bar/blobs/{digest}")).status == 200
    r = await client.delete(f"/v2/foo/blobs/{digest}")
    assert await error_code(r) == "BLOB_UNKNOWN"


async def test_large_blob_streams_through(client):
    data = hashlib.shake_128(b"big").digest(5 * 1024 * 1024 + 7)
    digest = await push_blob(client, "big", data)
    r = await client.get(f"/v2/big/blobs/{digest}")
    assert await r.read() == data
