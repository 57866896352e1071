"""``regctl adduser``, ``passwd``, ``deluser`` and ``users`` through the real Click group."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner, Result

from regctl.cli import cli
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceLayout
from regctl.registry.auth.htpasswd import parse

AUTH_OFF = (
    "Warning: auth.mode is none in regctl.yaml: the registry lets everyone in; users count once it is htpasswd or "
    "token (then `regctl up`)\n"
)


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def layout(tmp_path: Path) -> InstanceLayout:
    return create_instance(tmp_path, build_config({"auth.mode": "htpasswd"})).layout


def password_of(layout: InstanceLayout, name: str) -> bytes:
    return parse(layout.htpasswd.read_text())[name]


def test_adduser_asks_twice(layout: InstanceLayout) -> None:
    result = invoke("adduser", "alice", input="s3cret\ns3cret\n")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == f"Password: \nRepeat it: \nAdded user alice to {layout.htpasswd}: it can log in now\n"
    assert bcrypt.checkpw(b"s3cret", password_of(layout, "alice"))
    assert layout.htpasswd.stat().st_mode & 0o777 == 0o640


def test_adduser_asks_again_when_they_differ(layout: InstanceLayout) -> None:
    result = invoke("adduser", "alice", input="one\ntwo\ns3cret\ns3cret\n")
    assert result.exit_code == 0
    assert result.stderr.startswith("Password: \nRepeat it: \nError: The two entered values do not match.\nPassword: ")


def test_adduser_password_stdin(layout: InstanceLayout) -> None:
    result = invoke("adduser", "ci-bot", "--password-stdin", input="pyp4ss\n")
    assert (result.exit_code, result.stderr) == (0, f"Added user ci-bot to {layout.htpasswd}: it can log in now\n")
    assert bcrypt.checkpw(b"pyp4ss", password_of(layout, "ci-bot"))


def test_adduser_existing_user(layout: InstanceLayout) -> None:
    invoke("adduser", "alice", "--password-stdin", input="one\n")
    before = layout.htpasswd.read_text()
    result = invoke("adduser", "alice", "--password-stdin", input="two\n")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: user alice already exists\nHint: change the password with `regctl passwd alice`\n",
    )
    assert layout.htpasswd.read_text() == before


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (["a:b"], None, "Error: invalid user name 'a:b': use 1 to 64 letters, digits, '.', '_', '@' or '-', "
                        "starting with a letter or digit\n"),
        (["alice", "--password-stdin"], "\n", "Error: the password is empty\n"),
        (["alice", "--password-stdin"], "a\nb\n", "Error: the password on stdin spans several lines\n"
                                                  "Hint: give it as one line\n"),
        (["alice", "--password-stdin"], "x" * 73, "Error: the password is longer than 72 bytes, which bcrypt cannot "
                                                  "check\n"),
    ],
)  # fmt: skip
def test_adduser_refusals(layout: InstanceLayout, args: list[str], input: str | None, message: str) -> None:
    result = invoke("adduser", *args, input=input)
    assert (result.exit_code, result.stderr) == (1, message)  # a bad name is refused before any question
    assert layout.htpasswd.read_text() == ""


def test_adduser_with_auth_off_warns_and_creates_auth(tmp_path: Path) -> None:
    layout = create_instance(tmp_path, build_config({})).layout
    result = invoke("adduser", "alice", "--password-stdin", input="pw\n")
    assert (result.exit_code, result.stderr) == (
        0,
        f"Added user alice to {layout.htpasswd}: it can log in now\n" + AUTH_OFF,
    )
    assert layout.auth.stat().st_mode & 0o7777 == 0o2750


def test_passwd(layout: InstanceLayout) -> None:
    invoke("adduser", "alice", "--password-stdin", input="one\n")
    invoke("adduser", "bob", "--password-stdin", input="b\n")
    result = invoke("passwd", "alice", input="two\ntwo\n")
    assert (result.exit_code, result.stderr) == (0, "Password: \nRepeat it: \nChanged the password of alice\n")
    assert bcrypt.checkpw(b"two", password_of(layout, "alice"))
    assert list(parse(layout.htpasswd.read_text())) == ["alice", "bob"]


def test_passwd_unknown_user_is_refused_before_asking(layout: InstanceLayout) -> None:
    result = invoke("passwd", "carol")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no user carol in {layout.htpasswd}\nHint: add it with `regctl adduser carol`\n",
    )


def test_deluser(layout: InstanceLayout) -> None:
    invoke("adduser", "alice", "--password-stdin", input="one\n")
    invoke("adduser", "bob", "--password-stdin", input="b\n")
    result = invoke("deluser", "bob")
    assert (result.exit_code, result.stderr) == (0, "Removed user bob: the registry refuses it from now on\n")
    assert list(parse(layout.htpasswd.read_text())) == ["alice"]
    result = invoke("deluser", "bob")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no user bob in {layout.htpasswd}\nHint: `regctl users` lists those there are\n",
    )


def test_users(layout: InstanceLayout) -> None:
    result = invoke("users")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "",
        f"No users in {layout.htpasswd}: add one with `regctl adduser NAME`\n",
    )
    for name in ("alice", "bob"):
        invoke("adduser", name, "--password-stdin", input="pw\n")
    result = invoke("users")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "alice\nbob\n", "")
    result = invoke("users", "--json")
    assert json.loads(result.stdout) == {"htpasswd": str(layout.htpasswd), "users": ["alice", "bob"]}


def test_users_flags_entries_the_server_refuses(layout: InstanceLayout) -> None:
    layout.htpasswd.write_text("alice:$apr1$x$y\n")
    result = invoke("users")
    assert (result.exit_code, result.stdout) == (0, "alice\n")
    assert result.stderr == (
        "Warning: the entry of alice is not bcrypt: the server refuses every login while it is there "
        "(`regctl passwd alice` replaces it)\n"
    )


def test_users_with_auth_off(tmp_path: Path) -> None:
    create_instance(tmp_path, build_config({}))
    result = invoke("users")
    assert result.stderr.endswith(AUTH_OFF)
