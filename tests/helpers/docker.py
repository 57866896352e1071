"""The Docker engine as a user drives it: the ``docker`` CLI, with its own ``DOCKER_CONFIG``.

Other processes may share the daemon, so tests name their images under ``regctl-test/`` or the test
registry's address and remove what they create.
"""

from __future__ import annotations

import io
import os
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
            self("import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/bin", "-", tag, input=_busybox_rootfs())
        return tag


def _busybox_rootfs() -> bytes:
    """A tar of a minimal root: static busybox, a few applet links, /etc/passwd and /www/index.html."""
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
