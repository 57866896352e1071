"""All CLI output goes through one Terminal: messages to stderr, data to stdout.

``markup=False`` and ``highlight=False`` so user data (paths, config values) is printed verbatim, never read
as Rich markup; ``soft_wrap`` keeps a long error on one line instead of wrapping it at the terminal width.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, SpinnerColumn, Task, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from regctl.deploy.progress import Step


class Terminal:
    def __init__(self) -> None:
        self.stderr = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)
        self.stdout = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)

    def display_error(self, text: str, hint: str | None = None) -> None:
        self.stderr.print(f"Error: {text}", style="bold red")
        if hint:
            self.stderr.print(f"Hint: {hint}", style="yellow")

    def display_warning(self, text: str) -> None:
        self.stderr.print(f"Warning: {text}", style="yellow")

    def display_info(self, text: str) -> None:
        self.stderr.print(text)

    def display_success(self, text: str) -> None:
        self.stderr.print(text, style="green")

    def display_traceback(self) -> None:
        """The exception being handled, with its traceback (only under ``--debug``)."""
        self.stderr.print_exception()

    # -- data (stdout) ----------------------------------------------------------------------------------------
    def display_data(self, text: str) -> None:
        self.stdout.print(text)

    def display_json(self, data: Any) -> None:
        self.stdout.print(json.dumps(data, indent=2, sort_keys=True), soft_wrap=True)

    def display_table(self, rows: Sequence[tuple[str, str]], title: str | None = None) -> None:
        """A two-column key/value table (``regctl status``)."""
        table = Table(title=title, show_header=False, box=None, title_justify="left", pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in rows:
            table.add_row(key, value)
        self.stdout.print(table)

    def display_columns(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table with a header row (``regctl cert renew``'s report); cells wrap, never cut."""
        table = Table(box=None, pad_edge=False, header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.stdout.print(table, soft_wrap=False)

    # -- questions ------------------------------------------------------------------------------------------
    @property
    def interactive(self) -> bool:
        """Whether a person can answer a question (stdin is a terminal)."""
        return sys.stdin.isatty()

    def confirm(self, question: str, default: bool = False) -> bool:
        return click.confirm(question, default=default, err=True)

    # -- progress (the Reporter the library reports to) -------------------------------------------------------
    def info(self, text: str) -> None:
        self.display_info(text)

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[Step]:
        """A spinner (and a bar once the step knows its total) while the block runs; ``text`` stays afterwards.
        Without a terminal (CI logs), just ``text`` once."""
        if not self.stderr.is_terminal:
            self.stderr.print(f"{text} ...")
            yield _PlainStep()
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            _KnownBar(bar_width=20),
            TextColumn("{task.fields[detail]}", markup=False),
            console=self.stderr,
            transient=True,
        )
        with progress:
            task = progress.add_task(text, total=None, detail="")
            yield _RichStep(progress, task)
        self.stderr.print(f"{text}: done")


class _KnownBar(BarColumn):
    """A bar only once the step knows how much work there is; the spinner alone says "busy" until then."""

    def render(self, task: Task) -> RenderableType:
        return super().render(task) if task.total is not None else Text("")


class _PlainStep:
    def update(self, text: str | None = None, *, completed: int | None = None, total: int | None = None) -> None:
        pass


class _RichStep:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def update(self, text: str | None = None, *, completed: int | None = None, total: int | None = None) -> None:
        fields: dict[str, Any] = {} if text is None else {"detail": text}
        self._progress.update(self._task, completed=completed, total=total, **fields)
