"""``regctl healthcheck``: the image's HEALTHCHECK reads the server's configuration and REGISTRY_* as serve does."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result

from regctl.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["healthcheck", *args], env=env, catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _root(request: web.Request) -> web.Response:
    return web.Response(text="")


async def test_answers_over_http(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/", _root)
    async with TestServer(app, host="127.0.0.1") as server:
        config = tmp_path / "config.yml"
        config.write_text(f"version: 0.1\nstorage: {{inmemory: {{}}}}\nhttp: {{addr: ':{server.port}'}}\n")
        # CliRunner blocks: the check runs in a thread (in the container it is another process).
        result = await asyncio.to_thread(invoke, str(config))
        assert (result.exit_code, result.stdout) == (0, f"http://127.0.0.1:{server.port}/: 200\n")


def test_nothing_answers(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\nstorage: {inmemory: {}}\n")
    result = invoke(str(config), "--timeout", "1", env={"REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
                                                        "REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/domain.crt",
                                                        "REGISTRY_HTTP_TLS_KEY": "/certs/domain.key"})  # fmt: skip
    assert (result.exit_code, result.stderr) == (1, f"Error: https://127.0.0.1:{port}/: no answer\n")


def test_a_broken_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: nowhere}\n")
    result = invoke(str(config))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: http.addr: missing port in address 'nowhere'")
