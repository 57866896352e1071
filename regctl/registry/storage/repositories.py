"""The catalog: every repository, found by walking ``repositories/`` for ``_manifests`` directories."""

from __future__ import annotations

from regctl.registry.storage import layout
from regctl.registry.storage.driver import PathNotFoundError, StorageDriver


async def all_repositories(driver: StorageDriver) -> list[str]:
    """Every repository name that holds manifests, lexically sorted."""
    found: list[str] = []

    async def walk(prefix: str, path: str) -> None:
        try:
            children = await driver.list(path)
        except PathNotFoundError:
            return
        if "_manifests" in children and prefix:
            found.append(prefix)
        for child in children:
            if not child.startswith("_"):
                await walk(f"{prefix}/{child}" if prefix else child, f"{path}/{child}")

    await walk("", layout.REPOSITORIES)
    return sorted(found)
