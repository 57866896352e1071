"""Every command's Examples, as --help prints them: one command per line, a trailing backslash continued on
the next, indented line. A lone backslash at the end of a line in a Python string joins two examples into one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from regctl.cli import cli

# What a joined continuation looks like: text, a run of spaces, then an option (comments start with #).
_JOINED_RE = re.compile(r"\S {3,}--")


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        yield (*path, name)
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _examples(help_text: str) -> list[str]:
    lines = help_text.splitlines()
    start = lines.index("  Examples:") + 1 if "  Examples:" in lines else len(lines)
    block = []
    for line in lines[start:]:
        if not line.strip() or not line.startswith("    "):
            break
        block.append(line)
    return block


COMMANDS = list(_commands(cli))


def test_every_command_is_walked() -> None:
    assert ("init",) in COMMANDS
    assert ("cert", "renew") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_examples_are_one_command_per_line(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    examples = _examples(result.output)
    assert examples or "Examples:" not in result.output
    for index, line in enumerate(examples):
        assert not _JOINED_RE.search(line.split(" # ")[0]), f"two lines joined: {line!r}"
        if line.rstrip().endswith("\\"):
            following = examples[index + 1] if index + 1 < len(examples) else ""
            assert following.startswith("      "), f"not continued: {line!r}"
