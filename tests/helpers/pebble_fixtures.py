"""Pebble fixtures (``helpers.pebble``); ``tests/integration/conftest.py`` re-exports them.

- ``pebble_factory`` (session): ``pebble_factory(http_port=None, tls_port=None, eab=None, env=None)`` starts a
  new :class:`~helpers.pebble.Pebble` on free loopback ports; every one is closed at the end of the session.
  Use it for a Pebble of your own (one you stop, restart or configure).
- ``pebble`` (module): a running Pebble shared by the tests of one module; EAB not required.
- ``pebble_eab`` (module): a running Pebble that requires External Account Binding; ``pebble_eab.eab`` is
  ``{kid: hmac_key}`` with one key (``EAB_KID``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.pebble import Pebble, PebbleFactory, eab_hmac_key

EAB_KID = "kid-regctl-test"


@pytest.fixture(scope="session")
def pebble_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleFactory]:
    factory = PebbleFactory(tmp_path_factory.mktemp("pebble"))
    yield factory
    factory.close_all()


@pytest.fixture(scope="module")
def pebble(pebble_factory: PebbleFactory) -> Iterator[Pebble]:
    server = pebble_factory()
    yield server
    server.close()


@pytest.fixture(scope="module")
def pebble_eab(pebble_factory: PebbleFactory) -> Iterator[Pebble]:
    server = pebble_factory(eab={EAB_KID: eab_hmac_key()})
    yield server
    server.close()
