"""Storage drivers by name, as ``storage.driver`` in the server config names them (Distribution's factory).

A driver registers here by adding one entry to ``DRIVERS``: a function that validates its parameters
(defaults applied, unknown keys rejected) and builds the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from regctl.registry.storage.driver import StorageDriver
from regctl.registry.storage.filesystem import FilesystemDriver
from regctl.registry.storage.inmemory import InMemoryDriver


def _take(driver: str, params: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    """``allowed`` with the values given in ``params``; raises ValueError naming the first unknown key."""
    for key in params:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"storage driver {driver!r}: unknown parameter {key!r} (allowed: {known})")
    return {**allowed, **params}


def _filesystem(params: dict[str, Any]) -> StorageDriver:
    # ``maxthreads`` caps Distribution's blocking syscalls; regctl's thread pools are sized by the server,
    # so the key is only checked, letting registry:2 configs that set it load unchanged.
    taken = _take("filesystem", params, {"rootdirectory": "/var/lib/registry", "maxthreads": 100})
    root, maxthreads = taken["rootdirectory"], taken["maxthreads"]
    if not isinstance(root, str) or not root:
        raise ValueError("storage driver 'filesystem': parameter 'rootdirectory' must be a non-empty path")
    if not isinstance(maxthreads, int) or isinstance(maxthreads, bool) or maxthreads < 25:
        raise ValueError("storage driver 'filesystem': parameter 'maxthreads' must be an integer of at least 25")
    return FilesystemDriver(root)


def _inmemory(params: dict[str, Any]) -> StorageDriver:
    _take("inmemory", params, {})
    return InMemoryDriver()


DRIVERS: dict[str, Callable[[dict[str, Any]], StorageDriver]] = {
    "filesystem": _filesystem,
    "inmemory": _inmemory,
}


def create(name: str, params: dict[str, Any]) -> StorageDriver:
    """Build driver ``name`` from its config parameters; ValueError names an unknown driver or parameter."""
    build = DRIVERS.get(name)
    if build is None:
        raise ValueError(f"unknown storage driver {name!r} (allowed: {', '.join(sorted(DRIVERS))})")
    return build(params)
