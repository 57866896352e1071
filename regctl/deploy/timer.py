"""``regctl cert timer``: ``regctl -C <instance> cert renew`` once a day, from a systemd timer or cron.

The command names this very regctl by its absolute path (the scheduler's PATH is not the operator's) and the
instance by its absolute directory. Units run as the instance directory's owner, who owns its files.
"""

from __future__ import annotations

import hashlib
import pwd
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from regctl.deploy.files import atomic_write
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.render import render_renew_cron, render_renew_units
from regctl.errors import RegctlError

SYSTEM_UNITS = Path("/etc/systemd/system")
CRON_D = Path("/etc/cron.d")
# systemd spreads the daily run over this much (Let's Encrypt asks clients not to renew on the hour).
RANDOM_DELAY = "12h"
_SYSTEMD_PLAIN_RE = re.compile(r"[A-Za-z0-9_./:@+=,-]+")


@dataclass(frozen=True)
class TimerFile:
    name: str  # the file name in the scheduler's directory
    text: str


def regctl_command(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """This regctl as an absolute command: the ``regctl`` script it was started as, else the one installed
    next to its interpreter, else ``python -m regctl`` with that interpreter."""
    started = Path(argv0 if argv0 is not None else sys.argv[0])
    if started.name == "regctl" and started.is_file():
        return [str(started.absolute())]
    python = Path(executable or sys.executable).absolute()
    script = python.parent / "regctl"
    if script.is_file():
        return [str(script)]
    return [str(python), "-m", "regctl"]


def _owner(layout: InstanceLayout) -> str | None:
    """The instance directory's owner by name; None for root (a unit runs as root without User=)."""
    uid = layout.root.stat().st_uid
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _renew_args(layout: InstanceLayout, *extra: str) -> list[str]:
    return [*regctl_command(), "-C", str(layout.root.absolute()), "cert", "renew", *extra]


def _systemd_word(word: str) -> str:
    """One ExecStart= argument: double-quoted when it holds anything but plain characters; ``%`` (specifiers)
    and ``$`` (variables) doubled, as systemd.service(5) wants."""
    if not _SYSTEMD_PLAIN_RE.fullmatch(word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word.replace("%", "%%").replace("$", "$$")


def systemd_units(config: InstanceConfig, layout: InstanceLayout, *, user_units: bool) -> list[TimerFile]:
    """``regctl-renew-NAME.service`` and ``.timer``. System units run as the instance's owner (root: no
    User=), with CAP_NET_BIND_SERVICE when the challenge port is below 1024 (regctl answers on it itself when
    the registry's listener does not); ``user_units`` are for ``systemctl --user``, as whoever enables them."""
    user = None if user_units else _owner(layout)
    unit = unit_name(config)
    service, timer = render_renew_units(
        name=config.name,
        unit=unit,
        instance=layout.root.absolute(),
        exec_start=" ".join(_systemd_word(word) for word in _renew_args(layout)),
        user=user,
        bind_capability=user is not None and config.tls.acme.challenge_port < 1024,
        delay=RANDOM_DELAY,
    )
    return [TimerFile(f"{unit}.service", service), TimerFile(f"{unit}.timer", timer)]


def unit_name(config: InstanceConfig) -> str:
    return f"regctl-renew-{config.name}"


def cron_entry(config: InstanceConfig, layout: InstanceLayout, *, system: bool) -> TimerFile:
    """A crontab line (``crontab -e``), or with ``system`` an /etc/cron.d file running as the instance's owner.
    The time of day is fixed per instance directory, spread over the day as CAs ask; ``--quiet`` makes cron
    mail only failures."""
    digest = int(hashlib.sha256(str(layout.root.absolute()).encode()).hexdigest(), 16)
    command = " ".join(shlex.quote(word) for word in _renew_args(layout, "--quiet")).replace("%", "\\%")
    text = render_renew_cron(
        instance=layout.root.absolute(),
        minute=digest % 60,
        hour=digest // 60 % 24,
        command=command,
        user=(_owner(layout) or "root") if system else None,
    )
    # run-parts skips cron.d files whose names hold a dot.
    return TimerFile(unit_name(config).replace(".", "-"), text)


def write_files(directory: Path, files: list[TimerFile]) -> list[Path]:
    """Write ``files`` into ``directory`` (mode 0644, atomically); returns their paths."""
    written = []
    for file in files:
        path = directory / file.name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write(path, file.text, 0o644, exact=True)
        except PermissionError:
            raise RegctlError(
                f"cannot write {path}: permission denied",
                f"{directory} belongs to root: run `sudo regctl cert timer --write {directory}`, or --user",
            ) from None
        except OSError as exc:
            raise RegctlError(f"cannot write {path}: {exc.strerror}") from None
        written.append(path)
    return written
