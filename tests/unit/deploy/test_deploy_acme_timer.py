"""``regctl cert timer``'s files: systemd units and cron lines that run this regctl, quoted for each."""

from __future__ import annotations

import configparser
import multiprocessing
import os
import pwd
import shlex
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from regctl.deploy import timer
from regctl.deploy.instance import InstanceConfig, InstanceLayout, validate_config
from regctl.errors import RegctlError

REGCTL = "/opt/regctl/bin/regctl"
regctl_command = timer.regctl_command  # the fixture below replaces the module's


@pytest.fixture(autouse=True)
def _this_regctl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timer, "regctl_command", lambda: [REGCTL])


def make(**acme: object) -> InstanceConfig:
    return validate_config({"host": "registry.example.com", "tls": {"mode": "acme", "acme": acme}})


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_regctl_command(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "regctl"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    python = tmp_path / "bin" / "python3"
    assert regctl_command(argv0=str(script), executable="/usr/bin/python3") == [str(script)]
    assert regctl_command(argv0="/src/regctl/__main__.py", executable=str(python)) == [str(script)]  # python -m
    lone = str(tmp_path / "python3")  # no regctl script next to it
    assert regctl_command(argv0="-c", executable=lone) == [lone, "-m", "regctl"]


def test_system_units(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timer, "_owner", lambda layout: "alice")
    service, timer_file = timer.systemd_units(make(), layout, user_units=False)
    assert (service.name, timer_file.name) == ("regctl-renew-registry.service", "regctl-renew-registry.timer")
    parsed = unit(service.text)
    assert dict(parsed["Service"]) == {
        "Type": "oneshot",
        "ExecStart": f"{REGCTL} -C {layout.root.absolute()} cert renew",
        "User": "alice",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",  # http-01 on port 80
    }
    assert parsed["Unit"]["After"] == "network-online.target"
    parsed = unit(timer_file.text)
    assert dict(parsed["Timer"]) == {"OnCalendar": "daily", "RandomizedDelaySec": "12h", "Persistent": "true"}
    assert parsed["Install"]["WantedBy"] == "timers.target"


@pytest.mark.parametrize(
    ("owner", "user_units", "http_port", "user", "capability"),
    [
        (None, False, 80, None, False),  # root: no User=, no capability needed
        ("alice", False, 8080, "alice", False),
        ("alice", True, 80, None, False),  # user units run as whoever enables them, without capabilities
    ],
)
def test_who_runs_it(
    layout: InstanceLayout,
    monkeypatch: pytest.MonkeyPatch,
    owner: str | None,
    user_units: bool,
    http_port: int,
    user: str | None,
    capability: bool,
) -> None:
    monkeypatch.setattr(timer, "_owner", lambda layout: owner)
    service = unit(timer.systemd_units(make(http_port=http_port), layout, user_units=user_units)[0].text)["Service"]
    assert service.get("User") == user
    assert ("AmbientCapabilities" in service) is capability


def test_exec_start_quoting(tmp_path: Path) -> None:
    layout = InstanceLayout(tmp_path / "my registry %h $HOME")
    layout.root.mkdir()
    service = timer.systemd_units(make(), layout, user_units=True)[0]
    line = next(line for line in service.text.splitlines() if line.startswith("ExecStart="))
    assert line == f'ExecStart={REGCTL} -C "{tmp_path}/my registry %%h $$HOME" cert renew'


def test_cron_line(layout: InstanceLayout) -> None:
    entry = timer.cron_entry(make(), layout, system=False)
    minute, hour, *stars_and_command = entry.text.strip().split(" ", 5)
    assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24
    assert stars_and_command == ["*", "*", "*", f"{REGCTL} -C {layout.root.absolute()} cert renew --quiet"]
    assert timer.cron_entry(make(), layout, system=False) == entry  # the same time on every run


def test_cron_d_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timer, "_owner", lambda layout: "alice")
    layout = InstanceLayout(tmp_path / "50% off")
    layout.root.mkdir()
    config = validate_config({"name": "reg.v2", "host": "registry.example.com", "tls": {"mode": "acme"}})
    entry = timer.cron_entry(config, layout, system=True)
    assert entry.name == "regctl-renew-reg-v2"  # run-parts skips cron.d names with dots
    line = entry.text.splitlines()[-1]
    fields = line.split(" ", 6)
    assert fields[2:6] == ["*", "*", "*", "alice"]
    assert fields[6] == f"{REGCTL} -C '{tmp_path}/50\\% off' cert renew --quiet"
    assert shlex.split(fields[6].replace("\\%", "%"))[2] == str(layout.root)


def test_write_files(tmp_path: Path) -> None:
    files = [timer.TimerFile("a.service", "[Unit]\n"), timer.TimerFile("a.timer", "[Timer]\n")]
    written = timer.write_files(tmp_path / "units", files)
    assert written == [tmp_path / "units" / "a.service", tmp_path / "units" / "a.timer"]
    assert [(p.read_text(), p.stat().st_mode & 0o777) for p in written] == [("[Unit]\n", 0o644), ("[Timer]\n", 0o644)]


def _refusal(directory: Path, answer: Connection) -> None:
    if os.geteuid() == 0:  # root may write anywhere: try as nobody, as an operator without sudo would
        nobody = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    try:
        timer.write_files(directory, [timer.TimerFile("a.timer", "")])
    except RegctlError as exc:
        answer.send(exc.message)
    else:
        answer.send(None)


def test_write_files_without_permission(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_refusal, args=(locked, send))
    child.start()
    child.join(30)
    assert receive.poll(0), f"the writer exited with {child.exitcode} and said nothing"
    assert receive.recv() == f"cannot write {locked}/a.timer: permission denied"
    assert not (locked / "a.timer").exists()
