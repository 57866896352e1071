"""The server image, built from the regctl that is installed, with no network inside the build.

:func:`build_image` does, in order:

1. run the base image once to learn its Python (version, machine, libc), pulling the base only when missing;
2. make a wheel of regctl itself: ``pip wheel --no-deps`` from a source checkout, or the installed files listed
   in the dist-info ``RECORD`` re-packed into a wheel (:func:`repack_installed`);
3. ``pip download --only-binary=:all:`` its dependencies and pip itself for the base's Python and platform on
   the host, cached per (Python, platform) in ``$XDG_CACHE_HOME/regctl/wheels/``; a cache that already holds
   everything is used offline (containers cannot reach the package index, see PEERS.md);
4. write a build context in a temp dir: the Dockerfile, the image's default ``config.yml`` and its ``htpasswd``
   command (all from :mod:`regctl.deploy.render`) and ``wheels/``;
5. build it with the low-level API, reporting each Dockerfile step; the log is kept for failures.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.parser
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regctl import __version__
from regctl.deploy.instance import BASE_IMAGE_ENV, DEFAULT_BASE_IMAGE, InstanceConfig
from regctl.deploy.progress import Reporter
from regctl.errors import RegctlError

if TYPE_CHECKING:
    import docker

# Labels on the image: which regctl it holds and which base it was built on (a changed base means a rebuild).
VERSION_LABEL = "io.regctl.version"
BASE_LABEL = "io.regctl.base"
MIN_PYTHON = (3, 11)
# Lines of the build log shown when a build fails.
_TAIL = 15

_PROBE = """\
import glob, json, platform, sys
libc, version = platform.libc_ver()
if not libc and glob.glob("/lib/ld-musl-*.so.1"):
    libc, version = "musl", "1.2"
print(json.dumps({"executable": sys.executable, "version": sys.version_info[:2], "machine": platform.machine(),
                  "libc": libc, "libc_version": version}))
"""


def default_tag(config: InstanceConfig | None) -> str:
    """The image to build or run: ``image.name:image.tag``, by default ``regctl/registry:<regctl version>``."""
    return (config or InstanceConfig()).image.ref


def resolve_base_image(flag: str | None, environ: Mapping[str, str], config: InstanceConfig | None) -> str:
    """The base image: ``--base-image``, else ``$REGCTL_BASE_IMAGE``, else ``image.base``, else the default."""
    return flag or environ.get(BASE_IMAGE_ENV) or (config.image.base if config else DEFAULT_BASE_IMAGE)


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/regctl`` (``~/.cache/regctl`` by default)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "regctl"


# -- the base image's Python -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BasePython:
    """The Python interpreter of a base image, as far as choosing wheels for it goes."""

    executable: str  # the interpreter's path: the image runs it by that, whatever PATH says
    version: tuple[int, int]
    machine: str
    libc: str  # "glibc", "musl", or "" when unknown
    libc_version: str

    @property
    def abi(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}"

    @property
    def platforms(self) -> list[str]:
        """pip ``--platform`` tags this interpreter accepts, most specific first (pip does not expand them)."""
        return platform_tags(self.machine, self.libc, self.libc_version)

    @property
    def cache_key(self) -> str:
        return f"{self.abi}-{self.platforms[0]}"


def platform_tags(machine: str, libc: str, libc_version: str) -> list[str]:
    """Wheel platform tags for Linux on ``machine`` with ``libc`` at ``libc_version`` (PEP 600, PEP 656)."""
    try:
        major, minor = (int(part) for part in libc_version.split(".")[:2])
    except ValueError:
        raise RegctlError(
            f"cannot tell the C library version of the base image ({libc or 'unknown'} {libc_version!r})",
            "use a Debian/Ubuntu (glibc) or Alpine (musl) based image with Python 3.11+",
        ) from None
    if libc == "musl":
        return [f"musllinux_{major}_{m}_{machine}" for m in range(minor, -1, -1)]
    if libc != "glibc":
        raise RegctlError(f"unsupported C library {libc!r} in the base image", "use a glibc or musl based image")
    # manylinux_2_17 is the oldest on most architectures; x86 wheels go back to manylinux1 (glibc 2.5).
    oldest = 5 if machine in ("x86_64", "i686") else 17
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, oldest - 1, -1)]
    # Older wheels carry only the legacy aliases of the same glibc versions.
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{name}_{machine}" for glibc, name in legacy.items() if oldest <= glibc <= minor]


def probe_base(client: docker.DockerClient, base: str, reporter: Reporter) -> BasePython:
    """Run ``base`` once (no network) and report its Python; pulls ``base`` first when it is not local."""
    import docker.errors

    try:
        client.images.get(base)
    except docker.errors.ImageNotFound:
        with reporter.step(f"Pulling base image {base}"):
            try:
                client.images.pull(base)
            except docker.errors.APIError as exc:
                raise RegctlError(
                    f"base image {base} is not on this host and cannot be pulled: {exc.explanation or exc}",
                    "pull or load it yourself, or choose a local image with --base-image / image.base",
                ) from None
    try:
        facts = json.loads(_run_probe(client, base))
    except ValueError:
        raise _no_python(base, "it printed something unexpected") from None
    python = BasePython(
        facts["executable"], tuple(facts["version"]), facts["machine"], facts["libc"], facts["libc_version"]
    )
    if python.version < MIN_PYTHON:
        raise RegctlError(
            f"base image {base} has Python {python.version[0]}.{python.version[1]}, regctl needs 3.11 or newer",
            "choose a newer base image (--base-image / image.base)",
        )
    return python


def _run_probe(client: docker.DockerClient, base: str) -> str:
    """The probe's output; RegctlError when the base cannot run it. create/start/wait rather than
    containers.run, so a container that cannot even start is removed too."""
    import docker.errors

    container = client.containers.create(base, entrypoint=["python3", "-c", _PROBE], network_disabled=True)
    try:
        try:
            container.start()
        except docker.errors.APIError as exc:
            problem = str(exc.explanation or exc)
            raise _no_python(base, "not on its PATH" if "executable file not found" in problem else problem) from None
        if container.wait(timeout=120)["StatusCode"] != 0:
            raise _no_python(base, container.logs(stdout=False, stderr=True).decode(errors="replace"))
        return container.logs(stdout=True, stderr=False).decode(errors="replace")
    finally:
        container.remove(force=True)


def _no_python(base: str, detail: str) -> RegctlError:
    last = (detail.strip().splitlines() or ["it failed without a message"])[-1]
    return RegctlError(
        f"base image {base} has no usable python3: {last}",
        "choose a base image with Python 3.11 or newer on its PATH (--base-image / image.base)",
    )


# -- regctl's own wheel --------------------------------------------------------------------------------------
def source_checkout() -> Path | None:
    """The source tree regctl runs from (a checkout or an editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        if tomllib.loads((root / "pyproject.toml").read_text()).get("project", {}).get("name") == "regctl":
            return root
    return None


def regctl_wheel(dest: Path) -> Path:
    """A wheel of the regctl that is running, written into ``dest``; returns its path."""
    root = source_checkout()
    if root is None:
        return repack_installed(importlib.metadata.distribution("regctl"), dest)
    _pip("wheel", "--no-deps", "--wheel-dir", str(dest), str(root), what=f"building a wheel of {root}")
    wheels = sorted(dest.glob("regctl-*.whl"))
    if len(wheels) != 1:
        raise RegctlError(f"pip wheel wrote {len(wheels)} regctl wheels to {dest}, expected one")
    return wheels[0]


# Written by the installer, not part of the wheel (PEP 376, PEP 610); RECORD is regenerated.
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
_WHEEL_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: the same files give the same wheel


def repack_installed(dist: importlib.metadata.Distribution, dest: Path) -> Path:
    """Re-pack an installed distribution into a wheel in ``dest`` from the files its ``RECORD`` lists.

    Left out: files outside site-packages (console scripts, which the installer generates again from
    ``entry_points.txt``), byte code, and what the installer added. Returns the wheel's path.
    """
    files = dist.files
    if not files:
        raise RegctlError(
            f"cannot re-pack {dist.metadata['Name']}: its installed files are not listed (no RECORD)",
            "reinstall regctl with pip, or build the image from a source checkout",
        )
    info_dirs = {f.parts[0] for f in files if f.parts[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise RegctlError(f"cannot re-pack {dist.metadata['Name']}: expected one .dist-info in RECORD")
    info = info_dirs.pop()
    wheel_meta = email.parser.Parser().parsestr(dist.read_text("WHEEL") or "")
    tag = (wheel_meta.get_all("Tag") or ["py3-none-any"])[0]
    stem = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    path = dest / f"{stem}-{dist.version}-{tag}.whl"

    record: list[str] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for entry in sorted(files, key=str):
            name = entry.as_posix()
            if entry.parts[0] == ".." or "__pycache__" in entry.parts or entry.suffix == ".pyc":
                continue
            if entry.parts[0] == info and entry.name in _INSTALLER_FILES:
                continue
            source = Path(str(dist.locate_file(entry)))
            data = source.read_bytes()
            member = zipfile.ZipInfo(name, _WHEEL_TIME)
            member.external_attr = (source.stat().st_mode & 0o777 | 0o100000) << 16
            member.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(member, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        member = zipfile.ZipInfo(f"{info}/RECORD", _WHEEL_TIME)
        member.external_attr = 0o100644 << 16
        wheel.writestr(member, "\n".join(record) + "\n", zipfile.ZIP_DEFLATED)
    return path


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` of a wheel, without the ones that belong to extras (tests, docs)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        message = email.parser.Parser().parsestr(archive.read(metadata).decode())
    requires = message.get_all("Requires-Dist") or []
    return [r for r in requires if not re.search(r"\bextra\s*==", r.partition(";")[2])]


# -- dependency wheels for the base's Python -------------------------------------------------------------------
def download_wheels(requirements: list[str], python: BasePython, dest: Path, cache: Path, reporter: Reporter) -> None:
    """Put wheels of ``requirements`` (and everything they need) for ``python`` into ``dest``.

    The cache is tried alone first (no network); only when it lacks something does pip ask the index, and
    what it fetched is added to the cache.
    """
    target = ["--only-binary=:all:", "--python-version", "{}.{}".format(*python.version)]
    target += ["--implementation", "cp", "--abi", python.abi]
    for platform in python.platforms:
        target += ["--platform", platform]
    cache.mkdir(parents=True, exist_ok=True)
    links = ["--find-links", str(cache), "--dest", str(dest)]
    version = "{}.{}".format(*python.version)
    with reporter.step(f"Collecting wheels for Python {version} ({python.platforms[0]})"):
        if _run_pip("download", "--no-index", *links, *target, *requirements).returncode == 0:
            return
        _pip("download", *links, *target, *requirements, what="downloading wheels for the image")
        for wheel in dest.glob("*.whl"):
            if not (cache / wheel.name).exists():
                shutil.copy2(wheel, cache / wheel.name)


def _run_pip(*args: str) -> subprocess.CompletedProcess[str]:
    """The pip of the interpreter running regctl, so wheels come from where regctl itself came from."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)


def _pip(*args: str, what: str) -> None:
    """:func:`_run_pip`; a RegctlError naming ``what`` with pip's last lines when it fails."""
    result = _run_pip(*args)
    if result.returncode != 0:
        if "No module named pip" in result.stderr:
            raise RegctlError(f"pip is not installed for {sys.executable}", "install pip next to regctl")
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-_TAIL:])
        raise RegctlError(f"{what} failed (pip exited {result.returncode}):\n{tail}", _NETWORK_HINT)


_NETWORK_HINT = "the host needs to reach the package index once (PIP_INDEX_URL, proxy); later builds use the cache"


# -- the build -----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BuiltImage:
    ref: str
    id: str
    log: Path


def find_image(client: docker.DockerClient, ref: str) -> Any | None:
    """The local image ``ref`` (a docker.models.images.Image), or None."""
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def ensure_image(client: docker.DockerClient, ref: str, base: str, reporter: Reporter) -> str:
    """The id of the image ``ref``, built first when it is missing or was built on another base."""
    image = find_image(client, ref)
    if image is not None and (image.labels or {}).get(BASE_LABEL) == base:
        return str(image.id)
    reason = "is missing" if image is None else f"was built on {(image.labels or {}).get(BASE_LABEL, 'another base')}"
    reporter.info(f"Image {ref} {reason}: building it on {base}")
    return build_image(client, ref, base, reporter).id


def build_image(
    client: docker.DockerClient, ref: str, base: str, reporter: Reporter, *, environ: Mapping[str, str] = os.environ
) -> BuiltImage:
    """Build the server image ``ref`` on ``base`` from the running regctl (see the module docstring).

    Raises RegctlError when the base has no suitable Python, wheels cannot be had, or the build fails (with
    the last lines of the build log, which is kept in the cache directory).
    """
    from regctl.deploy.render import render_dockerfile, render_htpasswd_script, render_image_config

    cache = cache_dir(environ)
    python = probe_base(client, base, reporter)
    with tempfile.TemporaryDirectory(prefix="regctl-image-") as tmp:
        context = Path(tmp)
        wheels = context / "wheels"
        wheels.mkdir()
        with reporter.step("Building the regctl wheel"):
            own = regctl_wheel(wheels)
        download_wheels(
            [*wheel_requirements(own), "pip"], python, wheels, cache / "wheels" / python.cache_key, reporter
        )
        (context / "config.yml").write_text(render_image_config())
        (context / "htpasswd").write_text(render_htpasswd_script(python.executable))
        (context / "htpasswd").chmod(0o755)  # COPY keeps the mode: `docker run --entrypoint htpasswd` execs it
        pip_wheel = next(wheels.glob("pip-*.whl")).name
        dockerfile = render_dockerfile(base=base, python=python.executable, version=__version__, pip_wheel=pip_wheel)
        (context / "Dockerfile").write_text(dockerfile)
        log = cache / "logs" / f"build-{re.sub(r'[^A-Za-z0-9_.-]+', '_', ref)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        labels = {VERSION_LABEL: __version__, BASE_LABEL: base, "org.opencontainers.image.version": __version__}
        image_id = _docker_build(client, context, ref, labels, log, reporter)
    return BuiltImage(ref, image_id, log)


_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)")
_LAYER_RE = re.compile(r"^ ---> ([0-9a-f]{12,})$")


def _docker_build(
    client: docker.DockerClient, context: Path, ref: str, labels: dict[str, str], log: Path, reporter: Reporter
) -> str:
    import docker.errors

    image_id: str | None = None
    error: str | None = None
    where = "before its first step"
    # What each earlier stage (`FROM ... AS install`) ended with: the legacy builder keeps those as untagged
    # images, one more leaked with every build unless removed.
    stages: list[str] = []
    layer: str | None = None
    with log.open("w") as out, reporter.step(f"Building image {ref}") as step:
        try:
            for chunk in _stream(client, context, ref, labels):
                if "error" in chunk:
                    error = chunk["error"].strip()
                    out.write(f"{error}\n")
                elif "ID" in chunk.get("aux", {}):
                    image_id = chunk["aux"]["ID"]
                out.write(chunk.get("stream", ""))
                for line in chunk.get("stream", "").splitlines():
                    if match := _LAYER_RE.match(line):
                        layer = match.group(1)
                    elif match := _STEP_RE.match(line):
                        done, total, what = match.groups()
                        where = f"at step {done}/{total}"
                        step.update(f"step {done}/{total}: {what[:60]}", completed=int(done) - 1, total=int(total))
                        if what.startswith("FROM ") and layer is not None:
                            stages.append(layer)
        except docker.errors.APIError as exc:
            error = str(exc.explanation or exc)
            out.write(f"{error}\n")
        finally:
            _remove_untagged(client, stages)
    if error is not None or image_id is None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_TAIL:])
        what = f"failed {where}" if error is not None else "produced no image"
        raise RegctlError(
            f"building image {ref} {what}; the last lines of its log:\n{tail}",
            f"the whole build log is in {log}",
        )
    return image_id


def _remove_untagged(client: docker.DockerClient, images: list[str]) -> None:
    """Remove ``images`` that are still untagged (someone may have tagged one meanwhile); best effort."""
    import docker.errors

    for image in images:
        with contextlib.suppress(docker.errors.APIError):
            if not client.images.get(image).tags:
                client.images.remove(image)


def _stream(client: docker.DockerClient, context: Path, ref: str, labels: dict[str, str]) -> Iterator[dict[str, Any]]:
    # The legacy builder (dockerd 20.10 without buildx): rm/forcerm drop intermediate containers even on failure;
    # pull=False because the base was probed (and pulled if needed) just before.
    return client.api.build(path=str(context), tag=ref, labels=labels, rm=True, forcerm=True, pull=False, decode=True)
