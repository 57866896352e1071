"""``regctl htpasswd``: the server image's `htpasswd`, so the seed's `--entrypoint htpasswd ... -Bbn` works."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner, Result

from regctl.cli import cli
from regctl.registry.auth.htpasswd import parse


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["htpasswd", *args], input=input, catch_exceptions=False)


def test_the_seeds_line() -> None:
    result = invoke("-Bbn", "testuser", "testpassword")
    assert (result.exit_code, result.stderr) == (0, "")
    user, hashed = result.stdout.rstrip("\n").split(":", 1)
    assert user == "testuser" and hashed.startswith("$2y$10$")
    assert result.stdout.count("\n") == 1
    assert bcrypt.checkpw(b"testpassword", hashed.encode())


def test_cost_and_asked_password() -> None:
    result = invoke("-nB", "-C", "5", "alice", input="pw\npw\n")
    assert result.exit_code == 0
    assert result.stdout.split(":", 1)[1].startswith("$2y$05$")
    assert result.stderr == "Password: \nRepeat it: \n"


def test_password_from_stdin() -> None:
    result = invoke("-niB", "alice", input="pw\n")
    assert result.exit_code == 0
    assert bcrypt.checkpw(b"pw", result.stdout.strip().split(":", 1)[1].encode())


def test_file_create_update_delete(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    assert invoke("-Bbc", str(path), "alice", "one").stderr == "Adding password for user alice\n"
    assert invoke("-Bb", str(path), "bob", "two").stderr == "Adding password for user bob\n"
    assert invoke("-Bb", str(path), "alice", "three").stderr == "Updating password for user alice\n"
    entries = parse(path.read_text())
    assert list(entries) == ["alice", "bob"] and bcrypt.checkpw(b"three", entries["alice"])
    assert invoke("-D", str(path), "bob").stderr == "Deleting password for user bob\n"
    assert invoke("-Bbc", str(path), "carol", "four").exit_code == 0
    assert list(parse(path.read_text())) == ["carol"]


@pytest.mark.parametrize("flag", ["-m", "-d", "-s", "-p"])
def test_other_formats_are_refused(flag: str) -> None:
    result = invoke(f"{flag}bn", "alice", "pw")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: only bcrypt (-B) entries are written: the registry refuses MD5, crypt, SHA and plain ones\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-Bbn", "alice"], "Error: expected 2 arguments, got 1; usage: htpasswd [-cimBD] [-C cost] FILE USER | "
                            "-b[cmBD] FILE USER PASSWORD | -n[imB] USER | -nb[mB] USER PASSWORD"),
        (["-Dn", "alice"], "Error: -D deletes from a FILE: it cannot go with -n"),
    ],
)  # fmt: skip
def test_usage_errors(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, message)


def test_bad_user_name() -> None:
    result = invoke("-Bbn", "a:b", "pw")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: invalid user name 'a:b'")


def test_hidden_from_the_command_list() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "htpasswd" not in result.stdout and "healthcheck" not in result.stdout
