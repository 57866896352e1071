"""Fixtures and hooks shared by ``tests/integration`` and ``tests/e2e``.

Each conftest re-exports what it needs from here (``from helpers.fixtures import ...``); pytest finds
fixtures and hooks by name in the conftest's namespace.

Servers are session-scoped: tests share one server per kind and use their own repository names, so they
never see each other's content. Tests that need a server of their own (interop, restarts) use
``registry_factory``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from helpers import servers
from helpers.registry_api import RegistryClient
from helpers.tools import Skopeo

DISTRIBUTION_REASON = "CNCF Distribution 2.8 (Debian docker-registry)"

# Parametrise over these ids: `distribution` proves the harness, `regctl` tests regctl. Collection marks
# each test `regctl` when a regctl server is involved, else `distribution` when only Distribution is, so
# `-m "not distribution"` runs only what touches regctl and `-m distribution` only the harness check.
KIND_PARAMS = list(servers.KINDS)
_KIND_ARGNAMES = ("registry", "first", "second")

_MARKS = pytest.StashKey[dict[int, int]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "regctl: runs against regctl's server (python -m regctl serve)")
    config.addinivalue_line("markers", f"distribution: runs against {DISTRIBUTION_REASON}, proving the harness")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        kinds = {params[name] for name in _KIND_ARGNAMES if params.get(name) in servers.KINDS}
        mark = "regctl" if "regctl" in kinds else "distribution" if kinds else None
        if mark and item.get_closest_marker(mark) is None:
            item.add_marker(mark)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_MARKS] = servers.log_marks()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    # Attach what every server logged during this test, once, to its first failing phase.
    if report.failed and not getattr(item, "_regctl_logs_attached", False):
        item._regctl_logs_attached = True  # type: ignore[attr-defined]
        for title, text in servers.log_sections(item.stash.get(_MARKS, {})):
            report.sections.append((title, text))
    return report


@pytest.fixture(scope="session")
def free_port() -> Callable[..., int]:
    """``free_port(host="127.0.0.1")`` returns a port that was free a moment ago."""
    return servers.free_port


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.RegistryFactory]:
    """``.start(kind, root=None)``: a running server; ``.create(...)``: a stopped one. All stop at the end."""
    factory = servers.RegistryFactory(tmp_path_factory.mktemp("registries"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def regctl_registry(registry_factory: servers.RegistryFactory) -> servers.RegistryProcess:
    """regctl's server on a fresh root, delete enabled, 127.0.0.1:<free port>."""
    return registry_factory.start("regctl")


@pytest.fixture(scope="session")
def distribution_registry(registry_factory: servers.RegistryFactory) -> servers.RegistryProcess:
    """Distribution on a fresh root, delete enabled, 127.0.0.1:<free port>."""
    return registry_factory.start("distribution")


@pytest.fixture(scope="session", params=KIND_PARAMS)
def registry(request: pytest.FixtureRequest) -> servers.RegistryProcess:
    """The session's server of each kind in turn."""
    return request.getfixturevalue(f"{request.param}_registry")


@pytest.fixture
def api(registry: servers.RegistryProcess) -> RegistryClient:
    """A plain HTTP client for ``registry``, to check what the real clients did."""
    return RegistryClient(registry.url)


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(str(tmp_path_factory.mktemp("skopeo") / "auth.json"))
