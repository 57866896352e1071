"""Helpers shared by the integration and e2e suites: server subprocesses, a tiny registry HTTP client,
hand-built images and wrappers around the real clients (skopeo, docker).

Imported as ``helpers.*``: pytest puts ``tests/`` on ``sys.path`` because ``tests/conftest.py`` is not in a
package (the default ``prepend`` import mode).
"""
