"""Basic authentication against htpasswd: the challenge, and credentials good, bad or malformed."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import make_mocked_request

from regctl.registry.auth import Challenge
from regctl.registry.auth.basic import BasicAuth
from regctl.registry.auth.htpasswd import Htpasswd, hash_password


@pytest.fixture
def auth(tmp_path) -> BasicAuth:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{hash_password('s3cret', 4)}\n")
    return BasicAuth("Registry Realm", Htpasswd(str(path)))


def _request(header: str | None):
    return make_mocked_request("GET", "/v2/", headers={"Authorization": header} if header else {})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_right_credentials(auth):
    grant = await auth.authorize(_request(_basic("alice", "s3cret")), [])
    assert grant.user == "alice"


@pytest.mark.parametrize("header", [None, _basic("alice", "wrong"), _basic("bob", "s3cret"), "Basic !!!",
                                    "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer abc"])
async def test_everything_else_is_challenged(auth, header):
    with pytest.raises(Challenge) as caught:
        await auth.authorize(_request(header), [])
    assert caught.value.header == 'Basic realm="Registry Realm"'
    assert not caught.value.denied
