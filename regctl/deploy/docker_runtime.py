"""The docker runtime: the instance as one container of the server image, created with the Docker SDK.

The container is what the seed's ``docker run -d -p 5000:5000 --restart=always --name registry registry:2``
makes, plus the data volume (or host directory) and the rendered config.yml mounted read-only. It carries
two labels: ``io.regctl.instance`` (whose it is) and ``io.regctl.config-hash``, a digest of everything that
defines it (:func:`container_spec`); ``up`` recreates the container only when that digest changes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from regctl.deploy.image import ensure_image
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.progress import Reporter
from regctl.deploy.render import (
    CONTAINER_CONFIG,
    CONTAINER_PORT,
    CONTAINER_ROOT,
    check_container_access,
    check_files,
    container_command,
    published_ports,
    render_instance,
    secret_mounts,
    storage_path,
)
from regctl.deploy.runtime import (
    READY_TIMEOUT,
    Status,
    UpResult,
    check_port_free,
    count_repositories,
    delete_directory,
    directory_size,
    is_port_taken_message,
    local_url,
    port_error,
    registry_url,
    short_reason,
)
from regctl.errors import RegctlError

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

INSTANCE_LABEL = "io.regctl.instance"
HASH_LABEL = "io.regctl.config-hash"
# `docker stop` grace: the server lets in-flight requests finish for up to 30 s (registry/server.py).
STOP_TIMEOUT = 40
# Log lines shown when the container fails to start.
_LOG_TAIL = 20
# Sums the data directory inside the container (the volume is not reachable from the host in general).
_DU = "import os; print(sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk({root!r}) for f in fs))"


def container_spec(config: InstanceConfig, layout: InstanceLayout, image_id: str, server_config: str) -> dict[str, Any]:
    """Everything that defines the container, as plain data: image, configuration, command, ports, mounts,
    environment, restart policy. Its digest is the config-hash label."""
    data = storage_path(config, layout)
    volumes = {
        str(data) if data is not None else config.storage.volume: {"bind": CONTAINER_ROOT, "mode": "rw"},
        str(layout.server_config.absolute()): {"bind": CONTAINER_CONFIG, "mode": "ro"},
    }
    for mount in secret_mounts(config, layout):
        volumes[str(mount.source)] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
    spec: dict[str, Any] = {
        "name": config.name,
        "image": image_id,
        "config": server_config,
        "ports": {f"{inside}/tcp": [bind, port] for bind, port, inside in published_ports(config)},
        "volumes": volumes,
        "environment": {},
        "restart_policy": {"Name": "always"},
    }
    command = container_command(config, layout)
    if command is not None:  # absent otherwise: the digest of a container without TLS or auth stays as it was
        spec["command"] = command
    return spec


def config_hash(spec: Mapping[str, Any]) -> str:
    """The sha256 of ``spec`` in canonical JSON: the same spec always gives the same digest."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class DockerRuntime:
    name = "docker"

    def __init__(
        self,
        config: InstanceConfig,
        layout: InstanceLayout,
        reporter: Reporter,
        client: docker.DockerClient,
        base_image: str,
    ) -> None:
        self.config = config
        self.layout = layout
        self.reporter = reporter
        self.client = client
        self.base_image = base_image

    # -- up ------------------------------------------------------------------------------------------------
    def up(self) -> UpResult:
        url = registry_url(self.config)
        check_files(self.config, self.layout)
        check_container_access(self.config, self.layout)
        existing = self._container()
        # Checked first, so a taken port or an unusable path is reported before a build, and before an old
        # container is removed; the old container's own port is free only once it is gone.
        if existing is None or _published(existing) != (self.config.bind, str(self.config.port)):
            self._check_port()
        self._prepare_storage()
        image_id = ensure_image(self.client, self.config.image.ref, self.base_image, self.reporter)
        render_instance(self.config, self.layout, self.config.image.ref)
        spec = container_spec(self.config, self.layout, image_id, self.layout.server_config.read_text())
        digest = config_hash(spec)

        if existing is not None and existing.labels.get(HASH_LABEL) == digest:
            if existing.status == "running":
                return UpResult(changed=False, url=url)
            with self.reporter.step(f"Starting container {self.config.name}"):
                existing.start()
                self._wait_healthy(existing)
            return UpResult(changed=True, url=url)
        if existing is not None:
            with self.reporter.step(f"Removing container {self.config.name} (its configuration changed)"):
                existing.stop(timeout=STOP_TIMEOUT)
                existing.remove()
        with self.reporter.step(f"Starting container {self.config.name}"):
            container = self._create(spec, digest)
            self._wait_healthy(container)
        return UpResult(changed=True, url=url)

    def _check_port(self) -> None:
        # Only meaningful when the engine publishes ports on this very host (its local socket).
        if self.client.api.base_url.startswith("http+docker://"):
            check_port_free(self.config.bind, self.config.port)

    def _prepare_storage(self) -> None:
        import docker.errors

        path = storage_path(self.config, self.layout)
        if path is not None:
            # The daemon would create it as root; creating it here finds an unusable path before any container
            # exists. Ownership is the container's business: it starts as root and hands the directory over.
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegctlError(
                    f"data directory {path} is not writable: cannot create it ({exc.strerror})",
                    "fix storage.path in regctl.yaml, or create the directory yourself",
                ) from None
            if not path.is_dir():
                raise RegctlError(f"data directory {path} is not a directory", "fix storage.path in regctl.yaml")
            return
        try:
            self.client.volumes.get(self.config.storage.volume)
        except docker.errors.NotFound:
            self.client.volumes.create(self.config.storage.volume, labels={INSTANCE_LABEL: self.config.name})

    def _create(self, spec: dict[str, Any], digest: str) -> Container:
        import docker.errors

        try:
            container = self.client.containers.create(
                self.config.image.ref,
                name=spec["name"],
                detach=True,
                command=spec.get("command"),
                ports={port: tuple(binding) for port, binding in spec["ports"].items()},
                volumes=spec["volumes"],
                environment=spec["environment"],
                restart_policy=spec["restart_policy"],
                labels={INSTANCE_LABEL: self.config.name, HASH_LABEL: digest},
            )
        except docker.errors.APIError as exc:
            raise RegctlError(
                f"cannot create container {self.config.name}: {exc.explanation or exc}",
                "`docker ps -a` shows what holds that name; remove it, or change name in regctl.yaml",
            ) from None
        try:
            container.start()
        except docker.errors.APIError as exc:
            container.remove(force=True)
            text = str(exc.explanation or exc)
            if is_port_taken_message(text):
                raise port_error(self.config.bind, self.config.port) from None
            raise RegctlError(f"cannot start container {self.config.name}: {text}") from None
        return container

    def _wait_healthy(self, container: Container, timeout: float = READY_TIMEOUT) -> None:
        """Until the container's HEALTHCHECK says healthy. A container that exits (or restarts) meanwhile is
        removed, so restart=always does not retry it forever, and its last log lines are the error."""
        deadline = time.monotonic() + timeout
        while True:
            container.reload()
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            if state["Status"] in ("exited", "dead", "restarting") or container.attrs.get("RestartCount", 0):
                logs = self._tail(container)
                container.remove(force=True)
                # While restart=always brings it back, ExitCode may already belong to the next run.
                code = f" (exit code {state.get('ExitCode')})" if state["Status"] == "exited" else ""
                raise RegctlError(
                    f"container {self.config.name} exited at start{code}; its last log lines:\n{logs}",
                    "fix the cause above, then run `regctl up` again",
                )
            if health == "healthy" or (health is None and state["Status"] == "running"):
                return
            if health == "unhealthy" or time.monotonic() > deadline:
                raise RegctlError(
                    f"container {self.config.name} is not healthy after {timeout:.0f} s (health: {health}); "
                    f"its last log lines:\n{self._tail(container)}",
                    "see `regctl logs`; `regctl down` removes it",
                )
            time.sleep(0.5)

    def _tail(self, container: Container) -> str:
        return container.logs(tail=_LOG_TAIL).decode(errors="replace").rstrip() or "(no output)"

    # -- the rest ------------------------------------------------------------------------------------------
    def down(self, volumes: bool) -> None:
        import docker.errors

        container = self._container()
        if container is None:
            self.reporter.info(f"No container {self.config.name}: nothing to stop")
        else:
            with self.reporter.step(f"Stopping and removing container {self.config.name}"):
                container.stop(timeout=STOP_TIMEOUT)
                container.remove()
        if not volumes:
            return
        path = storage_path(self.config, self.layout)
        if path is not None:
            delete_directory(path, self.reporter)
            return
        try:
            volume = self.client.volumes.get(self.config.storage.volume)
        except docker.errors.NotFound:
            self.reporter.info(f"No volume {self.config.storage.volume}: nothing to delete")
            return
        with self.reporter.step(f"Deleting volume {self.config.storage.volume}"):
            try:
                volume.remove()
            except docker.errors.APIError as exc:
                raise RegctlError(
                    f"cannot delete volume {self.config.storage.volume}: {exc.explanation or exc}",
                    "another container uses it: `docker ps -a --filter volume=NAME` shows which",
                ) from None

    def status(self) -> Status:
        url = registry_url(self.config)
        container = self._container()
        if container is None:
            return Status("docker", "not created", None, url, self.config.image.ref, None, None, None, None)
        state = container.attrs["State"]
        running = state["Status"] == "running"
        return Status(
            runtime="docker",
            state=state["Status"],
            health=(state.get("Health") or {}).get("Status") if running else None,
            url=url,
            image=container.attrs["Config"]["Image"],
            started_at=_parse_time(state.get("StartedAt")),
            storage_bytes=self._storage_bytes(container, running),
            repositories=count_repositories(local_url(self.config)) if running else None,
            where=container.short_id,
        )

    def _storage_bytes(self, container: Container, running: bool) -> int | None:
        path = storage_path(self.config, self.layout)
        if path is not None:
            return directory_size(path)
        if not running:
            return None
        result = container.exec_run(["python3", "-c", _DU.format(root=CONTAINER_ROOT)])
        output = result.output.decode(errors="replace").strip()
        return int(output) if result.exit_code == 0 and output.isdigit() else None

    def logs(self, follow: bool, tail: int | None) -> Iterator[bytes]:
        container = self._require_container()
        stream = container.logs(stream=True, follow=follow, tail="all" if tail is None else tail)
        yield from stream

    def restart(self) -> None:
        container = self._require_container()
        if container.status != "running":
            raise RegctlError(f"container {self.config.name} is not running ({container.status})", "run `regctl up`")
        with self.reporter.step(f"Restarting container {self.config.name}"):
            container.restart(timeout=STOP_TIMEOUT)
            self._wait_healthy(container)

    def data_location(self) -> str:
        path = storage_path(self.config, self.layout)
        return f"data directory {path}" if path is not None else f"Docker volume {self.config.storage.volume}"

    # -- helpers -------------------------------------------------------------------------------------------
    def _container(self) -> Container | None:
        """The instance's container; RegctlError when a container of that name is not regctl's."""
        import docker.errors

        try:
            container = self.client.containers.get(self.config.name)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise RegctlError(f"Docker engine error: {short_reason(exc)}") from None
        if container.labels.get(INSTANCE_LABEL) != self.config.name:
            raise RegctlError(
                f"a container named {self.config.name} exists and was not created by regctl",
                "remove it (`docker rm -f NAME`), or choose another name in regctl.yaml",
            )
        return container

    def _require_container(self) -> Container:
        container = self._container()
        if container is None:
            raise RegctlError(f"no container {self.config.name}", "start the registry with `regctl up`")
        return container


def _published(container: Container) -> tuple[str, str] | None:
    """(host ip, host port) the container publishes its port on, as Docker reports them."""
    bindings = (container.attrs["HostConfig"].get("PortBindings") or {}).get(f"{CONTAINER_PORT}/tcp") or []
    return (bindings[0]["HostIp"], bindings[0]["HostPort"]) if bindings else None


def _parse_time(text: str | None) -> datetime.datetime | None:
    """Docker's UTC times (``2024-05-01T10:11:12.123456789Z``, nanoseconds) to the second; None when unset."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", text or "")
    if match is None or match.group(1).startswith("0001-"):
        return None
    return datetime.datetime.fromisoformat(match.group(1)).replace(tzinfo=datetime.UTC)
