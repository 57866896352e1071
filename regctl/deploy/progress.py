"""How the library reports progress without printing: it calls a Reporter, which the CLI's Terminal implements
(Rich spinners and progress bars on stderr). Tests and scripts pass :class:`NullReporter`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Step(Protocol):
    def update(self, text: str | None = None, *, completed: int | None = None, total: int | None = None) -> None:
        """Change the step's detail line and, once the amount of work is known, its progress (``completed`` of
        ``total``). Any argument left None keeps its previous value."""


class Reporter(Protocol):
    def info(self, text: str) -> None:
        """One line for the operator (which runtime was chosen, what was skipped)."""

    def step(self, text: str) -> contextlib.AbstractContextManager[Step]:
        """A unit of work that takes a while (a spinner while the block runs; the text stays once it is done)."""


class _NullStep:
    def update(self, text: str | None = None, *, completed: int | None = None, total: int | None = None) -> None:
        pass


class NullReporter:
    """Reports nothing: for tests and library callers that do not show progress."""

    def info(self, text: str) -> None:
        pass

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[Step]:
        yield _NullStep()
