"""Run the registry: one master process and N forked workers that share the listening port.

The master parses ``http.addr`` and binds one socket with ``SO_REUSEPORT``. It never listens on it: the socket
only reserves the port, so "address already in use" is reported once, up front, and a port of 0 becomes a
real port before any worker starts. Each worker then binds and listens on its own ``SO_REUSEPORT`` socket at
that exact address, and the kernel spreads incoming connections over the listening sockets.

The master forks the workers before any event loop exists in it, then only supervises:

- SIGTERM / SIGINT are forwarded; each worker stops accepting, lets in-flight requests finish (up to
  ``SHUTDOWN_TIMEOUT``) and exits 0. The master returns once every worker has exited.
- SIGHUP is forwarded: workers reload the TLS certificate and key (``registry.tls``; they also notice a
  change of the files by themselves). The htpasswd file is re-read whenever it changes, signal or not.
- A worker that dies unexpectedly is replaced, unless workers keep dying (``_CRASH_LIMIT``).

Started as root with ``--run-as USER`` (the server image does this), the master first makes the storage root
writable by USER (see :func:`ownership_plan`), then switches to USER before any worker exists: registry:2
runs as root, so the seed's ``-v $(pwd)/data:/var/lib/registry`` hands it a root-owned directory.

With ``acme.httpaddr`` every worker also serves plain HTTP there (``registry.acme_http``: ACME HTTP-01
tokens, and a redirect to HTTPS), on a port the master reserves the same way. With ``acme.challenge:
tls-alpn-01`` and ``responder: webroot`` the workers' TLS listener answers TLS-ALPN-01 itself
(``registry.alpn.AcmeTLSSite`` instead of ``web.SockSite``), so a renewal needs no port of its own.

With ``acme.auto`` the master forks a certificate renewer (``registry.renewer``) before switching users, so
the renewer keeps root's rights to the account key and the certificate files; it signals SIGHUP after a
renewal. The renewer exiting is logged and leaves the registry serving.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import errno
import grp
import inspect
import json
import logging
import multiprocessing
import os
import pwd
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from aiohttp import web

from regctl.config.server import Log, ServerConfig, join_addr, parse_addr
from regctl.errors import RegctlError
from regctl.registry.acme_http import create_challenge_app
from regctl.registry.alpn import AcmeTLSSite
from regctl.registry.renewer import Renewer
from regctl.registry.tls import ServerTLS
from regctl.tls.challenge_spec import CHALLENGE_SUBDIR

AppFactory = Callable[[ServerConfig], web.Application | Awaitable[web.Application]]

# How long a stopping worker waits for in-flight requests (a large blob upload) before cancelling them.
SHUTDOWN_TIMEOUT = 30.0
# After that, the master kills workers that have still not exited.
_KILL_GRACE = 10.0
# aiohttp reads request bodies 64 KiB at a time by default, which throttles blob uploads.
_READ_BUFSIZE = 1 << 20
# Give up when this many workers die unexpectedly within _CRASH_WINDOW seconds.
_CRASH_LIMIT = 5
_CRASH_WINDOW = 60.0

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HANDLED_SIGNALS = {*_STOP_SIGNALS, signal.SIGHUP}

log = logging.getLogger("regctl.server")


# -- addresses and sockets -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Listen:
    """Where every worker binds: one family, one host, one port (never 0 once the master has reserved it)."""

    family: socket.AddressFamily
    host: str
    port: int
    # An IPv6 wildcard socket that also accepts IPv4, as Go's ":5000" does.
    dualstack: bool = False
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{join_addr(self.host, self.port)}"


def _resolve(addr: str, key: str = "http.addr") -> _Listen:
    try:
        host, port = parse_addr(addr)
    except ValueError as exc:
        raise RegctlError(f"cannot listen on {addr!r}: {exc}", f"fix {key}") from None
    if not host:
        if socket.has_ipv6:
            return _Listen(socket.AF_INET6, "::", port, dualstack=True)
        return _Listen(socket.AF_INET, "0.0.0.0", port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        hint = "use an IP address or a name this host resolves"
        raise RegctlError(f"cannot listen on {addr}: {exc.strerror}", hint) from None
    # Like Go, a name listens on one of its addresses, IPv4 first ("localhost" → 127.0.0.1).
    family, *_, sockaddr = min(infos, key=lambda info: info[0] != socket.AF_INET)
    return _Listen(family, sockaddr[0], port)


def _bind(listen: _Listen, *, reuseport: bool) -> socket.socket:
    sock = socket.socket(listen.family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR: a restart must not fail on connections of the previous run left in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listen.dualstack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((listen.host, listen.port))
    except BaseException:
        sock.close()
        raise
    return sock


def _reserve(listen: _Listen, addr: str, option: str = "--addr / http.addr") -> tuple[_Listen, socket.socket]:
    """Bind the master's port-reserving socket; returns the real address (port 0 resolved) and the socket."""
    try:
        # Probe without SO_REUSEPORT first: another regctl's workers would happily share the port otherwise.
        with _bind(listen, reuseport=False) as probe:
            listen = dataclasses.replace(listen, port=probe.getsockname()[1])
        return listen, _bind(listen, reuseport=True)
    except OSError as exc:
        if listen.dualstack and exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            # IPv6 is disabled on this host: Go's ":5000" then means every IPv4 address.
            return _reserve(_Listen(socket.AF_INET, "0.0.0.0", listen.port), addr, option)
        hint = {
            errno.EADDRINUSE: f"stop the other server on that port, or choose another with {option}",
            errno.EACCES: "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1024",
            errno.EADDRNOTAVAIL: "use an address of this host, or :PORT for every interface",
        }.get(exc.errno or 0)
        raise RegctlError(f"cannot listen on {addr}: {os.strerror(exc.errno or 0).lower()}", hint) from None


# -- logging ------------------------------------------------------------------------------------------------
_RECORD_ATTRS = {*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime"}


class _Formatter(logging.Formatter):
    """Distribution-like log lines: logfmt (``text``), JSON (``json``) or logstash JSON, plus ``log.fields``."""

    def __init__(self, formatter: str, fields: dict[str, Any]) -> None:
        super().__init__()
        self._formatter = formatter
        self._fields = fields

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
            "pid": record.process,
            **self._fields,
        }
        # aiohttp's access log repeats its message as extra fields: keep those for JSON only.
        if self._formatter != "text" or record.name != "aiohttp.access":
            entry.update((key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRS)
        error = self.formatException(record.exc_info) if record.exc_info else None
        if self._formatter == "text":
            line = " ".join(f"{key}={_logfmt(value)}" for key, value in entry.items())
            return f"{line}\n{error}" if error else line
        if error:
            entry["error"] = error
        if self._formatter == "logstash":
            entry = {"@timestamp": entry.pop("time"), "@version": "1", "message": entry.pop("msg"), **entry}
        return json.dumps(entry, default=str)


def _logfmt(value: Any) -> str:
    text = str(value)
    if text and not any(char in text for char in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text)


def _configure_logging(config: Log) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(config.formatter, config.fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(config.level, config.level.upper()))


# -- workers ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    # The worker reports ("ready",) or ("error", message, hint) once; None after that.
    status: Connection | None
    ready: bool = False


def _worker_main(
    config: ServerConfig,
    listen: _Listen,
    challenge: _Listen | None,
    app_factory: AppFactory,
    status: Connection,
    inherited: list[Any],
) -> None:
    """The body of a forked worker process; its exit code is 0 after a clean stop, 1 on failure."""
    for resource in inherited:  # the master's reserving sockets, signal pipe and renewer socket
        resource.close()
    signal.set_wakeup_fd(-1)
    import uvloop

    try:
        uvloop.run(_serve(config, listen, challenge, app_factory, status))
    except RegctlError as exc:
        _report_failure(status, exc.message, exc.hint)
        sys.exit(1)
    except Exception as exc:
        log.exception("worker failed")
        _report_failure(status, f"worker failed: {type(exc).__name__}: {exc}", "see the traceback in the log")
        sys.exit(1)


def _report_failure(status: Connection, message: str, hint: str | None) -> None:
    try:
        status.send(("error", message, hint))
    except OSError:  # closed once serving: the master only sees the exit, so say why here
        log.error("worker failed", extra={"error": message})


async def _serve(
    config: ServerConfig, listen: _Listen, challenge: _Listen | None, app_factory: AppFactory, status: Connection
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    tls = ServerTLS(config.http.tls) if config.http.tls is not None else None
    loop.add_signal_handler(
        signal.SIGHUP, tls.reload if tls is not None else lambda: log.info("reload requested, nothing to reload")
    )
    # The master blocked these around fork(): one that arrived meanwhile is delivered now, to the loop.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED_SIGNALS)

    sock = _bind(listen, reuseport=True)
    challenge_sock = _bind(challenge, reuseport=True) if challenge is not None else None
    access_log: dict[str, Any] = {"access_log": None} if config.log.accesslog.disabled else {}
    app = app_factory(config)
    if inspect.isawaitable(app):
        app = await app
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, read_bufsize=_READ_BUFSIZE, **access_log
    )
    runners = [runner]
    if challenge is not None:
        assert config.acme is not None
        challenge_app = create_challenge_app(
            config.acme.challengedir, scheme="https" if listen.tls else "http",
            port=config.acme.redirectport or listen.port,
            base_url=config.http.host,
        )
        runners.append(web.AppRunner(challenge_app, handle_signals=False, **access_log))
    for each in runners:
        await each.setup()
    watcher = asyncio.create_task(tls.watch()) if tls is not None else None
    try:
        site: web.BaseSite
        if tls is not None and config.acme is not None and config.acme.answers_tls_alpn:
            assert config.acme.challengedir is not None
            challenges = Path(config.acme.challengedir) / CHALLENGE_SUBDIR
            site = AcmeTLSSite(runner, sock, backlog=socket.SOMAXCONN, ssl_context=tls.context,
                               challenge_dir=challenges)
        else:
            ssl_context = tls.context if tls is not None else None
            site = web.SockSite(runner, sock, backlog=socket.SOMAXCONN, ssl_context=ssl_context)
        await site.start()
        if challenge_sock is not None:
            await web.SockSite(runners[1], challenge_sock, backlog=socket.SOMAXCONN).start()
        status.send(("ready",))
        status.close()
        log.debug("worker serving")
        await stop.wait()
        log.debug("worker stopping")
    finally:
        if watcher is not None:
            watcher.cancel()
        for each in reversed(runners):
            await each.cleanup()


# -- running as another user --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunAs:
    """The account ``--run-as`` switches to."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def resolve_user(spec: str) -> RunAs:
    """``USER[:GROUP]``, each a name or a number, like ``docker run --user``. Without GROUP, the user's primary
    group from /etc/passwd (or gid = uid for a number that has no entry). Raises RegctlError when unknown."""
    user, _, group = spec.partition(":")
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise RegctlError(f"--run-as: no user {user!r} on this system", "give a user name or a uid") from None
        entry = None
    uid = entry.pw_uid if entry else int(user)
    gid = entry.pw_gid if entry else uid
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise RegctlError(f"--run-as: no group {group!r} on this system", "give a group name or a gid") from None
    groups = tuple(os.getgrouplist(entry.pw_name, gid)) if entry else (gid,)
    return RunAs(entry.pw_name if entry else user, uid, gid, groups)


def writable_by(st: os.stat_result, uid: int, gids: Collection[int]) -> bool:
    """Whether ``uid`` (in ``gids``) may create entries in the directory ``st``, by its mode bits alone."""
    if st.st_uid == uid:
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif st.st_gid in gids:
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    return st.st_mode & bits == bits


def readable_by(st: os.stat_result, uid: int, gids: Collection[int]) -> bool:
    """Whether ``uid`` (in ``gids``) may read the file ``st``, by its mode bits alone."""
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def unreadable_files(paths: Collection[str], user: RunAs) -> list[str]:
    """The files in ``paths`` that ``user`` could not read (missing ones are left to the server's own check)."""
    gids = {user.gid, *user.groups}
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not readable_by(st, user.uid, gids):
            found.append(path)
    return found


def ownership_plan(root: Path, user: RunAs) -> list[Path]:
    """What to hand to ``user`` (chown) under the storage ``root`` so it can serve there; [] when nothing.

    - ``root`` itself when ``user`` cannot write to it: a host directory docker created as root for ``-v``.
    - The ``docker/`` tree only when the top of it (down to ``v2/blobs`` and ``v2/repositories``) has an entry
      owned by someone else: data written by registry:2, which runs as root. Then every entry not owned by
      ``user`` is listed. A tree the user already owns is never walked, so a large registry starts fast.
    """
    plan = [] if writable_by(root.stat(), user.uid, user.groups) else [root]
    tree = root / "docker"
    top = [tree, tree / "registry", tree / "registry/v2", tree / "registry/v2/blobs", tree / "registry/v2/repositories"]
    if any(path.exists() and path.lstat().st_uid != user.uid for path in top):
        below = (Path(parent, name) for parent, dirs, files in os.walk(tree) for name in (*dirs, *files))
        plan += [path for path in (tree, *below) if path.lstat().st_uid != user.uid]
    return plan


def switch_user(user: RunAs, storage_root: str | None) -> list[Path]:
    """Make ``storage_root`` (the filesystem driver's root, if any) usable by ``user``, then become ``user``.

    Call it in the master before any worker exists (they inherit the identity). Already running as
    ``user.uid`` (``docker run --user``), it does nothing. Returns the paths whose owner it changed. Raises
    RegctlError when neither root nor ``user``, since only root can switch.
    """
    euid = os.geteuid()
    if euid == user.uid:
        return []
    if euid != 0:
        raise RegctlError(f"--run-as {user.name} needs root, but regctl runs as uid {euid}", "start it as root")
    changed: list[Path] = []
    if storage_root is not None:
        root = Path(storage_root)
        if not root.exists():
            root.mkdir(parents=True)
        changed = ownership_plan(root, user)
        for path in changed:
            os.chown(path, user.uid, user.gid, follow_symlinks=False)
    # Supplementary groups first, the uid last: once the uid changes, nothing else may be changed.
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    os.setuid(user.uid)
    return changed


# -- the master ---------------------------------------------------------------------------------------------
class _Master:
    def __init__(
        self,
        config: ServerConfig,
        listen: _Listen,
        count: int,
        factory: AppFactory,
        *,
        reserved: list[socket.socket],
        challenge: _Listen | None = None,
        renewer: Renewer | None = None,
    ) -> None:
        self._config = config
        self._listen = listen
        self._challenge = challenge
        self._reserved = reserved
        self._renewer = renewer
        self._count = count
        self._factory = factory
        self._context = multiprocessing.get_context("fork")
        self._workers: dict[int, _Worker] = {}  # by slot
        self._wake_r, self._wake_w = socket.socketpair()
        self._crashes: collections.deque[float] = collections.deque()
        self._announced = False  # every first-generation worker reported ready
        self._stopping = False
        self._kill_at: float | None = None
        self._failure: RegctlError | None = None
        self._unclean_exit = False

    def run(self, on_listening: Callable[[str], None] | None) -> int:
        self._wake_w.setblocking(False)
        previous = {signum: signal.signal(signum, lambda *_: None) for signum in _HANDLED_SIGNALS}
        # The handlers do nothing: the signal number written to the wakeup socket wakes the loop below.
        old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        try:
            for slot in range(self._count):
                self._start(slot)
            while self._workers:
                self._wait()
                if not self._announced and not self._stopping and all(w.ready for w in self._workers.values()):
                    self._announced = True
                    extra = {"challenge_url": self._challenge.url} if self._challenge is not None else {}
                    log.info("listening", extra={"url": self._listen.url, "workers": self._count, **extra})
                    if self._renewer is not None:
                        self._renewer.workers_ready()
                    if on_listening is not None:
                        on_listening(self._listen.url)
        finally:
            for worker in self._workers.values():  # only left when this loop itself failed
                worker.process.kill()
                worker.process.join()
            # Before the signal handlers go: a renewal finishing now still sends SIGHUP.
            if self._renewer is not None:
                self._renewer.stop()
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._wake_r.close()
            self._wake_w.close()
        if self._failure is not None:
            raise self._failure
        return 1 if self._unclean_exit else 0

    def _start(self, slot: int) -> None:
        receive, send = self._context.Pipe(duplex=False)
        inherited = [*self._reserved, self._wake_r, self._wake_w, receive]
        if self._renewer is not None:
            inherited.append(self._renewer.conn)
        process = self._context.Process(
            target=_worker_main,
            args=(self._config, self._listen, self._challenge, self._factory, send, inherited),
            name=f"regctl-worker-{slot}",
        )
        # Until its event loop has handlers, a new worker keeps stop signals pending instead of dying.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED_SIGNALS)
        send.close()
        self._workers[slot] = _Worker(process, receive)
        log.debug("worker started", extra={"worker_pid": process.pid})

    def _wait(self) -> None:
        handles: list[Any] = [self._wake_r]
        if self._renewer is not None:
            handles.append(self._renewer.process.sentinel)
        for worker in self._workers.values():
            handles.append(worker.process.sentinel)
            if worker.status is not None:
                handles.append(worker.status)
        timeout = None if self._kill_at is None else max(0.0, self._kill_at - time.monotonic())
        ready = set(wait(handles, timeout))
        if self._wake_r in ready:
            for signum in self._wake_r.recv(64):
                self._on_signal(signal.Signals(signum))
        if self._renewer is not None and self._renewer.process.sentinel in ready:
            self._renewer.process.join()
            fields = {"exit_code": self._renewer.process.exitcode}
            if self._stopping:
                log.debug("certificate renewer exited", extra=fields)
            else:
                log.error("certificate renewer exited, the certificate is no longer renewed automatically",
                          extra=fields)
            self._renewer = None
        for slot, worker in list(self._workers.items()):
            if worker.status is not None and worker.status in ready:
                self._on_status(worker)
            if worker.process.sentinel in ready:
                self._on_exit(slot, worker)
        if self._kill_at is not None and time.monotonic() >= self._kill_at:
            for worker in self._workers.values():
                log.warning("worker did not stop in time, killing it", extra={"worker_pid": worker.process.pid})
                worker.process.kill()
            self._kill_at = None

    def _on_signal(self, signum: signal.Signals) -> None:
        if signum == signal.SIGHUP:
            log.info("reload requested, forwarding to workers")
            self._signal_workers(signum)
        elif not self._stopping:
            log.info("stopping", extra={"signal": signum.name})
            self._stop(signum)
        else:
            log.warning("second stop signal, killing workers", extra={"signal": signum.name})
            self._signal_workers(signal.SIGKILL)

    def _stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        self._stopping = True
        self._kill_at = time.monotonic() + SHUTDOWN_TIMEOUT + _KILL_GRACE
        self._signal_workers(signum)

    def _signal_workers(self, signum: signal.Signals) -> None:
        for worker in self._workers.values():
            if worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signum)

    def _on_status(self, worker: _Worker) -> None:
        assert worker.status is not None
        try:
            message = worker.status.recv()
        except EOFError:  # exited without a word; _on_exit reports it
            message = None
        worker.status.close()
        worker.status = None
        if message == ("ready",):
            worker.ready = True
        elif message is not None:
            _, text, hint = message
            if self._announced:
                log.error("worker failed to start", extra={"worker_pid": worker.process.pid, "error": text})
            elif self._failure is None:
                # Nothing was announced yet: a startup failure, raised to the operator as is (once).
                self._failure = RegctlError(text, hint)
                self._stop()

    def _on_exit(self, slot: int, worker: _Worker) -> None:
        worker.process.join()
        del self._workers[slot]
        code = worker.process.exitcode
        fields = {"worker_pid": worker.process.pid, "exit_code": code}
        if self._stopping:
            log.debug("worker exited", extra=fields)
            self._unclean_exit = self._unclean_exit or code != 0
            return
        if not self._announced:
            self._failure = RegctlError(f"a worker exited with code {code} while starting", "see the log above")
            self._stop()
            return
        log.warning("worker exited unexpectedly, restarting it", extra=fields)
        now = time.monotonic()
        self._crashes.append(now)
        while self._crashes and self._crashes[0] < now - _CRASH_WINDOW:
            self._crashes.popleft()
        if len(self._crashes) >= _CRASH_LIMIT:
            self._failure = RegctlError(
                f"workers keep exiting ({len(self._crashes)} in {_CRASH_WINDOW:.0f} s), giving up",
                "see the log above for the cause",
            )
            log.error("workers keep exiting, stopping", extra={"exits": len(self._crashes)})
            self._stop()
            return
        self._start(slot)


def run(
    config: ServerConfig,
    workers: int,
    app_factory: AppFactory | None = None,
    *,
    on_listening: Callable[[str], None] | None = None,
    drop_privileges: Callable[[], None] | None = None,
) -> int:
    """Serve ``config`` with ``workers`` processes until SIGTERM/SIGINT; blocks, and returns the exit code.

    ``app_factory`` builds each worker's application (default: ``regctl.registry.app.create_app``); it may
    be a coroutine function. ``on_listening(url)`` is called once every worker listens (``url`` has the
    real port when ``http.addr`` asked for port 0). ``drop_privileges`` (``--run-as``) is called after the
    certificate renewer is forked and before any port is bound (``SO_REUSEPORT`` sockets sharing a port must
    belong to one user). Returns 0 when every worker stopped cleanly, 1 if one had to be killed. Raises
    RegctlError when a port cannot be bound, a worker fails to start, or workers keep dying.
    """
    if workers < 1:
        raise RegctlError(f"need at least 1 worker, got {workers}")
    if app_factory is None:
        from regctl.registry.app import create_app as app_factory
    _configure_logging(config.log)
    acme = config.acme
    renewer = Renewer(config) if acme is not None and acme.auto else None
    try:
        if drop_privileges is not None:
            drop_privileges()
        with contextlib.ExitStack() as stack:
            listen, reserved = _reserve(_resolve(config.http.addr), config.http.addr)
            stack.enter_context(reserved)
            listen = dataclasses.replace(listen, tls=config.http.tls is not None)
            sockets, challenge = [reserved], None
            if acme is not None and acme.httpaddr:
                challenge, sock = _reserve(_resolve(acme.httpaddr, "acme.httpaddr"), acme.httpaddr, "acme.httpaddr")
                sockets.append(stack.enter_context(sock))
            master = _Master(
                config, listen, workers, app_factory, reserved=sockets, challenge=challenge, renewer=renewer
            )
            return master.run(on_listening)
    finally:
        if renewer is not None:
            renewer.stop()
