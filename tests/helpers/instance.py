"""regctl instances as an operator drives them: ``regctl -C DIR init|up|down|status|logs|compose``, as
subprocesses of the installed CLI, against the real Docker engine or the process runtime.

Everything a session creates on the shared daemon is named ``regctl-e2e-<session id>-...`` (containers,
volumes, networks, compose projects, image repositories), so :func:`sweep` can remove whatever a failed test
left behind without touching anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from helpers.docker import DockerEngine
from helpers.servers import REPO_ROOT, free_port
from helpers.tools import describe, run

PREFIX = "regctl-e2e-"
_CLI_TIMEOUT = 600  # `up` may build the server image (wheels + docker build) when it is missing


def regctl_env(engine: DockerEngine, **extra: str) -> dict[str, str]:
    """The environment of every regctl command: the session's DOCKER_CONFIG, plain output, no leaked config."""
    env = {k: v for k, v in engine.env.items() if not k.startswith(("REGISTRY_", "REGCTL_"))}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def regctl(*args: str, env: dict[str, str], check: bool = True, timeout: float = _CLI_TIMEOUT, cwd: Path | None = None):
    """``python -m regctl ARGS`` (the interpreter running the tests has regctl installed)."""
    return run(sys.executable, "-m", "regctl", *args, env=env, check=check, timeout=timeout, cwd=cwd or REPO_ROOT)


class Instance:
    """One instance directory made by ``regctl init``; call it to run ``regctl -C DIR ARGS``."""

    def __init__(self, root: Path, name: str, port: int, engine: DockerEngine, env: dict[str, str]) -> None:
        self.root = root
        self.name = name
        self.port = port
        self.engine = engine
        self.env = env

    def __call__(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = _CLI_TIMEOUT
    ):
        return regctl("-C", str(self.root), *args, env={**self.env, **(env or {})}, check=check, timeout=timeout)

    # -- regctl.yaml -----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "regctl.yaml"

    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text()) or {}

    def edit(self, **changes: object) -> None:
        """Set keys in regctl.yaml as an operator would; dotted keys via ``__`` (``storage__volume=...``)."""
        data = self.config()
        for dotted, value in changes.items():
            *parents, leaf = dotted.split("__")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        self.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        if "port" in changes:
            self.port = int(changes["port"])  # type: ignore[arg-type]

    @property
    def volume(self) -> str:
        return self.config().get("storage", {}).get("volume", "")

    # -- what a user sees ------------------------------------------------------------------------------
    @property
    def addr(self) -> str:
        return f"localhost:{self.port}"

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        """(status, body) of ``GET http://127.0.0.1:PORT{path}``; status 0 when nothing answers."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url() + path, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, urllib.error.URLError):
            return 0, b""

    def catalog(self) -> list[str]:
        status, body = self.get("/v2/_catalog")
        assert status == 200, f"GET /v2/_catalog on {self.url()} gave {status}: {body[:500]!r}"
        return json.loads(body)["repositories"]

    def container(self) -> dict[str, Any] | None:
        """``docker inspect`` of the instance's container, or None when there is none."""
        result = self.engine("container", "inspect", self.name, check=False)
        return json.loads(result.stdout)[0] if result.returncode == 0 else None

    def pid(self) -> int | None:
        """The process runtime's server pid when it is alive."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.root / "run" / "regctl.pid").read_text().split()[0])
            os.kill(pid, 0)
            return pid
        return None

    def cleanup(self) -> None:
        """Whatever the test did, leave no container, volume or server process behind."""
        with contextlib.suppress(Exception):
            self("down", "--volumes", "--yes", check=False, timeout=120)
        self.engine("rm", "-f", "-v", self.name, check=False)
        if self.volume.startswith(PREFIX):
            self.engine("volume", "rm", "-f", self.volume, check=False)
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if self.pid() is None:
                    break
                time.sleep(0.1)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class InstanceFactory:
    """``create(**yaml_changes)``: ``regctl init --yes`` in a fresh directory, named and bound for the tests."""

    def __init__(self, base: Path, session: str, engine: DockerEngine, env: dict[str, str], image: str | None):
        self.base = base
        self.session = session
        self.engine = engine
        self.env = env
        self.image = image
        self.instances: list[Instance] = []

    def name(self, what: str) -> str:
        return f"{PREFIX}{self.session}-{what}"

    def create(self, *init_args: str, **changes: object) -> Instance:
        n = len(self.instances) + 1
        name = self.name(f"i{n}")
        root = self.base / name
        port = free_port()
        args = ["init", str(root), "--yes", "--host", "localhost", "--port", str(port), "--name", name]
        result = regctl(*args, "--volume", f"{name}-data", *init_args, env=self.env)
        instance = Instance(root, name, port, self.engine, self.env)
        self.instances.append(instance)
        assert instance.config_path.is_file(), f"regctl init wrote no regctl.yaml:\n{describe(result)}"
        # Loopback only (init has no flag for the bind address) and the session's prebuilt server image.
        defaults: dict[str, object] = {"bind": "127.0.0.1"}
        if self.image:
            repo, tag = self.image.rsplit(":", 1)
            defaults |= {"image__name": repo, "image__tag": tag}
        instance.edit(**(defaults | changes))
        return instance

    def cleanup(self) -> None:
        for instance in reversed(self.instances):
            instance.cleanup()


def sweep(engine: DockerEngine, session: str) -> list[str]:
    """Remove every container, volume, network and image tag named for this session; return what was left."""
    mark = f"{PREFIX}{session}"
    left: list[str] = []

    def ids(*cmd: str) -> list[str]:
        return engine(*cmd, check=False).stdout.decode().split()

    for cid in ids("ps", "-aq", "--filter", f"name={mark}"):
        left.append(f"container {cid}")
        engine("rm", "-f", "-v", cid, check=False)
    for vol in ids("volume", "ls", "-q", "--filter", f"name={mark}"):
        left.append(f"volume {vol}")
        engine("volume", "rm", "-f", vol, check=False)
    for net in ids("network", "ls", "-q", "--filter", f"name={mark}"):
        left.append(f"network {net}")
        engine("network", "rm", net, check=False)
    for ref in ids("images", "--format", "{{.Repository}}:{{.Tag}}"):
        if mark in ref:
            left.append(f"image {ref}")
            engine("rmi", "-f", ref, check=False)
    return left


_PUSHED_DIGEST = re.compile(rb"digest: (sha256:[0-9a-f]{64}) size: \d+")


def push_remove_pull(engine: DockerEngine, src: str, image_id: str, ref: str) -> str:
    """The seed's flow: tag ``src`` as ``ref``, ``docker push``, remove every local tag, ``docker pull`` it back
    and check it is the same image (same ID). Returns the pushed manifest digest."""
    engine("tag", src, ref)
    push = engine("push", ref)
    match = _PUSHED_DIGEST.search(push.stdout)
    assert match, f"no digest in docker push output:\n{push.stdout.decode()}"
    pull_again(engine, ref, image_id, also_remove=(src,))
    return match.group(1).decode()


def pull_again(engine: DockerEngine, ref: str, image_id: str, also_remove: tuple[str, ...] = ()) -> None:
    """Remove ``ref`` (and ``also_remove``) locally so no tag of the image is left, then pull it back."""
    engine.remove_images(ref, *also_remove)
    assert engine.image_id(image_id) is None, f"{image_id} still has a local tag; the pull would not be real"
    engine("pull", ref)
    assert engine.image_id(ref) == image_id, f"docker pull {ref} gave another image than the one pushed"


def wait_http(url: str, timeout: float = 60) -> int:
    """Poll ``url`` until it answers 200/401; return the last status (0 when nothing answered)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status == 401:
                return status
        except (OSError, urllib.error.URLError):
            status = 0
        time.sleep(0.2)
    return status
