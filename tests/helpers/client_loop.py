"""Clients that keep requesting while a test changes the server under them (a new certificate, a renewal).

:class:`ClientLoop` calls ``attempt`` over and over in its own threads and keeps every result and every
failure, so a test can assert afterwards that no request failed while the change happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Self, TypeVar

T = TypeVar("T")


class ClientLoop(Generic[T]):
    """``attempt`` in ``threads`` threads from :meth:`start` to :meth:`stop` (or as a context manager).

    An exception is a failure (``"Type: message"``), except one of ``until_up`` raised before the first
    success: the loop may start before the server listens, so it sees the very first certificate."""

    def __init__(
        self, attempt: Callable[[], T], *, threads: int = 1, until_up: tuple[type[BaseException], ...] = ()
    ) -> None:
        self.attempt = attempt
        self.until_up = until_up
        self.results: list[T] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.results.append(self.attempt())
            except Exception as exc:
                if isinstance(exc, self.until_up) and not self.results:
                    time.sleep(0.01)  # not listening yet
                    continue
                self.failures.append(f"{type(exc).__name__}: {exc}")

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_more(self, count: int = 20, timeout: float = 60) -> None:
        """Until ``count`` more requests have succeeded."""
        seen = len(self.results)
        deadline = time.monotonic() + timeout
        while len(self.results) < seen + count:
            assert time.monotonic() < deadline, f"fewer than {count} requests in {timeout:.0f}s: {self.failures[:5]}"
            time.sleep(0.05)
