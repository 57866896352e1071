"""Run the real clients as subprocesses and fail with everything they printed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping

import pytest

DEFAULT_TIMEOUT = 300


def run(
    *cmd: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    input: bytes | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd`` (no shell); with ``check``, fail the test showing exit code, stdout and stderr."""
    result = subprocess.run(
        cmd,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(describe(result), pytrace=False)
    return result


def describe(result: subprocess.CompletedProcess[bytes]) -> str:
    return (
        f"$ {shlex.join(str(a) for a in result.args)}\n"
        f"exit code {result.returncode}\n"
        f"--- stdout ---\n{result.stdout.decode(errors='replace')}\n"
        f"--- stderr ---\n{result.stderr.decode(errors='replace')}"
    )


def require_tool(name: str) -> str:
    """The tool's path, or fail: CI installs every tool the suites use (see .ci/run)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name!r} is not on PATH; install it (apt) as .ci/run does", pytrace=False)
    return path


class Skopeo:
    """skopeo against plain-HTTP loopback registries, with auth state isolated from the user's."""

    def __init__(self, authfile: str) -> None:
        self.binary = require_tool("skopeo")
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": authfile}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return run(self.binary, *args, env=self.env, check=check)

    def copy(self, src: str, dest: str) -> subprocess.CompletedProcess[bytes]:
        return self("copy", "--src-tls-verify=false", "--dest-tls-verify=false", src, dest)

    def inspect(self, ref: str, *, raw: bool = False, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self("inspect", "--tls-verify=false", *(["--raw"] if raw else []), ref, check=check)

    def list_tags(self, ref: str) -> subprocess.CompletedProcess[bytes]:
        return self("list-tags", "--tls-verify=false", ref)

    def delete(self, ref: str) -> subprocess.CompletedProcess[bytes]:
        return self("delete", "--tls-verify=false", ref)
