"""An offline Debian 12 + Python base image for the server image, built with debootstrap from the apt mirror.

No registry can be pulled from on the test machines, so ``python:3.12-slim`` (regctl's default base) is not
available. ``debootstrap --variant=minbase --include=python3 bookworm`` against the machine's own apt mirror
gives a ~160 MB root with Python 3.11, imported as ``regctl-test/debian-python:12`` (see ../shared/PEERS.md,
"Offline images"). It takes about a minute, so it is built only when the tag is missing and then kept: the
tag is the cache. A lock file serialises concurrent sessions sharing the daemon.

Usable outside pytest too (``python tests/helpers/base_image.py``) so anyone can build the tag by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_IMAGE = "regctl-test/debian-python:12"
SUITE = "bookworm"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
FALLBACK_MIRROR = "http://deb.debian.org/debian"
_LOCK = Path(tempfile.gettempdir()) / "regctl-test-debian-python.lock"


class BaseImageError(RuntimeError):
    """The base image could not be built; the message holds the failing command's output."""


def apt_mirror(sources: Path = SOURCES) -> str:
    """The first ``URIs:`` of the deb822 sources file: the mirror this machine's apt already reaches."""
    with contextlib.suppress(OSError):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and line.split(":", 1)[1].split():
                return line.split(":", 1)[1].split()[0]
    return FALLBACK_MIRROR


def _image_exists(tag: str, env: dict[str, str] | None) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag], env=env, capture_output=True, check=False
    )
    return result.returncode == 0


def ensure_base_image(tag: str = BASE_IMAGE, env: dict[str, str] | None = None, log: Path | None = None) -> str:
    """``tag`` exists afterwards; it is built with debootstrap + ``docker import`` only when missing.

    Raises BaseImageError (with the tail of the build output) when debootstrap or the import fails.
    """
    if _image_exists(tag, env):
        return tag
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it right now
        if _image_exists(tag, env):
            return tag
        _build(tag, env, log)
    return tag


def _build(tag: str, env: dict[str, str] | None, log: Path | None) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise BaseImageError("debootstrap is not installed (apt-get install debootstrap, as .ci/run does)")
    if os.geteuid() != 0:
        raise BaseImageError(f"building {tag} with debootstrap needs root; build it once as root")
    root = Path(tempfile.mkdtemp(prefix="regctl-e2e-debroot-"))
    log_path = log or root.with_suffix(".log")
    ok = False
    try:
        with log_path.open("ab") as out:
            cmd = [debootstrap, "--variant=minbase", "--include=python3", SUITE, str(root), apt_mirror()]
            out.write(f"=== {' '.join(cmd)}\n".encode())
            out.flush()
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise BaseImageError(f"debootstrap failed (exit {result.returncode}):\n{_tail(log_path)}")
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (root / cache).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            assert tar.stdout is not None
            imported = subprocess.run(
                ["docker", "import", "-c", 'CMD ["/usr/bin/python3"]', "-", tag],
                stdin=tar.stdout,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
            tar.stdout.close()
            if tar.wait() != 0 or imported.returncode != 0:
                raise BaseImageError(f"docker import of {root} as {tag} failed:\n{_tail(log_path)}")
        ok = True
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if ok and log is None:
            log_path.unlink(missing_ok=True)  # kept only when the build failed


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    print(ensure_base_image(sys.argv[1] if len(sys.argv) > 1 else BASE_IMAGE))
