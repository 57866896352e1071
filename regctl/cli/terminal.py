"""All CLI output goes through one Terminal: messages to stderr, data to stdout.

``markup=False`` and ``highlight=False`` so user data (paths, config values) is printed verbatim, never read
as Rich markup; ``soft_wrap`` keeps a long error on one line instead of wrapping it at the terminal width.
"""

from __future__ import annotations

from rich.console import Console


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

    def display_traceback(self) -> None:
        """The exception being handled, with its traceback (only under ``--debug``)."""
        self.stderr.print_exception()
