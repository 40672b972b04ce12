"""Starting a tor of our own when none answers on the control port, and stopping it again.

The launched tor is owned by this process: it exits when our owning controller closes or when
this process dies (even by SIGKILL), so a crashed run never leaves a tor behind.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import stem
from stem.control import Controller, Listener

from .._exceptions import TorUnavailable
from .._settings import cache_dir
from ._control import open_controller
from ._endpoint import CONTROL_PORT_SETTING, TorEndpoint

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
_STOP_TIMEOUT = 10.0
_LOG_TAIL = 8
_PROBLEM_TAIL = 4
_PROGRESS_INTERVAL = 2.0  # seconds between two progress lines, so a slow bootstrap is seen moving
_READ_SIZE = 65536
_MAX_LINE = 1000
_STDOUT_LOGS = ("notice stdout", "info stdout", "debug stdout")
# "Bootstrapped 45% (loading_descriptors): Loading relay descriptors"; tor < 0.4.0 has no tag.
_BOOTSTRAPPED = re.compile(r"\[notice\] Bootstrapped (\d+) ?%(?: \(([\w-]+)\))?: (.*)")
_LEVEL = re.compile(r"\[(debug|info|notice|warn|err)\] ")
# A crash report's banner and backtrace frames say nothing to a user ("Tor ... died: ..." does).
_CRASH_NOISE = re.compile(r"=+ T= \d+|\S+\[0x[0-9a-f]+\]")
_TIMESTAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? ")
_INSTALL_HINT = (
    "install tor (Debian/Ubuntu: sudo apt install tor; macOS: brew install tor) "
    f"or start one and point {CONTROL_PORT_SETTING} at it"
)


def default_data_dir() -> Path:
    """Kept between runs: a cached consensus makes the next bootstrap take seconds."""
    return cache_dir() / "tor"


class LaunchedTor:
    """A tor this process started; ``stop()`` it (or use ``with``) when done.

    ``controller`` is the connection that took ownership of tor: closing it ends tor (that is how
    ``stop()`` works), so reuse it rather than closing it. Other controllers opened with
    ``open_controller(endpoint)`` may be closed freely.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        controller: Controller,
        endpoint: TorEndpoint,
        data_dir: Path,
    ) -> None:
        self.process = process
        self.controller = controller
        self.endpoint = endpoint
        self.data_dir = data_dir

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """End tor and reap it; idempotent."""
        self.controller.close()  # tor exits when its owning controller goes
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("tor (pid %d) outlived its owning controller; killing it", self.pid)
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> LaunchedTor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def launch_tor(
    *,
    tor_cmd: str | None = None,
    data_dir: Path | None = None,
    socks_port: int = 0,
    control_port: int = 0,
    extra_config: Mapping[str, str | Sequence[str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> LaunchedTor:
    """Start tor, wait until it has bootstrapped to 100 % and take ownership of it.

    Port 0 lets tor pick a free port itself (no race with other programs); the endpoint reports
    the ports it chose. ``extra_config`` entries are added to, or replace, the base torrc
    options; a list value gives an option several lines (e.g. ``DirAuthority``). Bootstrap
    progress is logged at INFO; a tor that exits early is reported with what it said. Works from
    any thread: the ``timeout`` is a deadline on reading tor's output, not stem's SIGALRM.
    """
    tor = shutil.which(tor_cmd or "tor")
    if tor is None:
        where = f" at {tor_cmd}" if tor_cmd else ""
        raise TorUnavailable(f"no tor binary found{where}: {_INSTALL_HINT}")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    _prepare_data_dir(data_dir)
    port_file = data_dir / "control_port"
    pid_file = data_dir / "tor.pid"
    for stale in (port_file, pid_file):
        stale.unlink(missing_ok=True)
    config: dict[str, str | Sequence[str]] = {
        "SocksPort": f"127.0.0.1:{socks_port or 'auto'}",
        "ControlPort": f"127.0.0.1:{control_port or 'auto'}",
        "ControlPortWriteToFile": str(port_file),
        "CookieAuthentication": "1",
        "DataDirectory": str(data_dir),
        "PidFile": str(pid_file),
        # One circuit per SOCKS username: conflux would move a session's streams between exits.
        "ConfluxEnabled": "0",
        "Log": [f"notice file {data_dir / 'notice.log'}"],
        "AvoidDiskWrites": "1",
        **(extra_config or {}),
    }
    deadline = time.monotonic() + timeout
    process = _start(tor, config)
    launched: LaunchedTor | None = None

    def started() -> None:
        nonlocal launched
        launched = _start_circuits(process, port_file, data_dir, max(deadline - time.monotonic(), 1.0))

    try:
        _await_bootstrap(process, deadline, timeout, started)
        return launched or _take_ownership(process, port_file, data_dir, max(deadline - time.monotonic(), 1.0))
    except BaseException:
        if launched is not None:
            launched.controller.close()
        process.kill()  # a no-op once reaped; until then the PID is certainly still tor's
        process.wait()
        raise
    finally:
        _close_output(process)


def _start(tor: str, config: Mapping[str, str | Sequence[str]]) -> subprocess.Popen[bytes]:
    """Run tor with ``config`` as its torrc (on stdin), owned by this process.

    Not stem's ``launch_tor_with_config``: it discards tor's stderr, and hides the process until
    tor has bootstrapped, so neither what a failing tor says nor a kill on timeout is in reach.
    ``__OwningControllerProcess`` makes tor exit when this process dies, even by SIGKILL; the
    owning controller's TAKEOWNERSHIP (stem sends it on authentication) then takes that over.
    """
    args = [tor, "-f", "-", "__OwningControllerProcess", str(os.getpid())]
    try:
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise TorUnavailable(f"cannot start {tor}: {exc.strerror or exc}") from None
    assert process.stdin is not None
    try:
        with process.stdin:  # a torrc is far smaller than a pipe's buffer: this cannot block
            process.stdin.write(_torrc(config).encode())
    except BrokenPipeError:  # tor exited without reading it; its output says why
        pass
    return process


def _torrc(config: Mapping[str, str | Sequence[str]]) -> str:
    """One line per value; tor must log NOTICE to stdout for its bootstrap progress to be read."""
    given = config.get("Log", [])
    logs = [given] if isinstance(given, str) else list(given)
    if not any(entry.lower() in _STDOUT_LOGS for entry in logs):
        logs.append("notice stdout")
    options = {**config, "Log": logs}
    return "".join(
        f"{key} {value}\n" for key, values in options.items()
        for value in ([values] if isinstance(values, str) else values)
    )  # fmt: skip


def _await_bootstrap(
    process: subprocess.Popen[bytes], deadline: float, timeout: float, started: Callable[[], None]
) -> None:
    """Read tor's stdout and stderr until it has bootstrapped to 100 %, it exits, or time runs out.
    ``started`` is called once, at tor's first bootstrap line below 100 % (its ports are open)."""
    output = _TorOutput()
    begun = False
    streams = {stream.fileno(): (_Lines(), is_stderr) for stream, is_stderr in
               ((process.stdout, False), (process.stderr, True)) if stream is not None}  # fmt: skip
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            pause = output.progress.flush()  # a progress line held back, shown when its time comes
            for key, _ in selector.select(remaining if pause is None else min(remaining, pause)):
                chunk = os.read(key.fd, _READ_SIZE)
                lines, is_stderr = streams[key.fd]
                if not chunk:
                    selector.unregister(key.fd)
                for line in lines.feed(chunk):
                    if output.add(line, stderr=is_stderr):
                        return
                    if not begun and output.progress.started:
                        begun = True
                        started()
    try:  # tor closed both streams (it has exited, or is about to) or time is up
        returncode = process.wait(max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        log.debug("tor (pid %d) did not bootstrap in %g s: killed it", process.pid, timeout)
        raise TorUnavailable(_timeout_failure(timeout, output.tail)) from None
    raise TorUnavailable(_exit_failure(returncode, output.problems or output.tail))


def _close_output(process: subprocess.Popen[bytes]) -> None:
    """Once bootstrapped tor's output is not read any more (its notice.log keeps it)."""
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _timeout_failure(timeout: float, tail: Sequence[str]) -> str:
    return f"tor did not bootstrap in time (limit {timeout:g} s); its last log lines:\n{_indented(tail)}"


def _exit_failure(returncode: int, said: Sequence[str]) -> str:
    how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
    return f"tor {how} before bootstrapping; it said:\n{_indented(said)}"


def _indented(lines: Sequence[str]) -> str:
    return "\n".join(f"  {line}" for line in lines) or "  (nothing)"


class _Lines:
    """Splits a stream's chunks into lines, none longer than ``_MAX_LINE`` characters."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[str]:
        """The complete lines in ``chunk``; an empty chunk (end of stream) flushes the rest."""
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        if not chunk or len(self._partial) > _MAX_LINE:
            complete.append(self._partial)
            self._partial = b""
        return [text for raw in complete if (text := _clean(raw))]


def _clean(raw: bytes) -> str:
    text = raw[:_MAX_LINE].decode("utf-8", "replace").strip()
    return "".join(char if char.isprintable() else "?" for char in text)


class _TorOutput:
    """What a starting tor has said: its last lines, its problems, its bootstrap progress."""

    def __init__(self) -> None:
        #: The last lines from both streams, for a tor that ran out of time.
        self.tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL)
        #: Its last warnings, errors and other words (not log lines), for a tor that exited.
        self.problems: collections.deque[str] = collections.deque(maxlen=_PROBLEM_TAIL)
        self.progress = _Progress()

    def add(self, line: str, *, stderr: bool) -> bool:
        """Take one line; whether it says tor has bootstrapped to 100 %."""
        log.debug("tor%s: %s", " (stderr)" if stderr else "", line)
        line = _TIMESTAMP.sub("", line, count=1)
        self.tail.append(line)
        level = _LEVEL.match(line)
        if level is None or level.group(1) in ("warn", "err"):  # not a log line: a crash, a wrapper
            if not _CRASH_NOISE.fullmatch(line):
                self.problems.append(line)
            return False
        bootstrap = _BOOTSTRAPPED.match(line)
        if bootstrap is None:
            return False
        percent, tag, summary = bootstrap.groups()
        self.progress.update(int(percent), tag, summary)
        return int(percent) >= 100


class _Progress:
    """Logs bootstrap progress at INFO as it moves: at most a line per interval, but 100 % at once.

    A line held back is shown once the interval is over, even if tor says nothing more (a tor
    stuck at "Connecting to a relay" shows that it is stuck there).
    """

    def __init__(self, interval: float = _PROGRESS_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._shown = -1
        self._shown_at = -math.inf
        self._pending: tuple[int, str | None, str] | None = None

    @property
    def started(self) -> bool:
        """Whether tor has reported any bootstrap progress yet."""
        return self._pending is not None or self._shown >= 0

    def update(self, percent: int, tag: str | None, summary: str) -> None:
        if percent > self._shown:
            self._pending = (percent, tag, summary[:200])
            self.flush()

    def flush(self) -> float | None:
        """Show the line held back if its time has come; else the seconds until it has (None: none held)."""
        if self._pending is None:
            return None
        percent, tag, summary = self._pending
        wait = self._shown_at + self._interval - self._clock()
        if percent < 100 and wait > 0:
            return wait
        self._pending = None
        self._shown, self._shown_at = percent, self._clock()
        if tag:
            log.info("tor: Bootstrapped %d %% (%s): %s", percent, tag, summary)
        else:
            log.info("tor: Bootstrapped %d %%: %s", percent, summary)
        return None


def _prepare_data_dir(data_dir: Path) -> None:
    """tor itself would only say "Failed to parse/validate config" for an unusable directory."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TorUnavailable(
            f"cannot use {data_dir} as tor's data directory ({exc.strerror or exc}); "
            "make it writable or choose another data directory"
        ) from None


def _start_circuits(
    process: subprocess.Popen[bytes], port_file: Path, data_dir: Path, timeout: float
) -> LaunchedTor | None:
    """Take ownership as tor starts to bootstrap, and ask it for a circuit at once.

    With a cached consensus tor otherwise idles until its next once-a-second housekeeping before
    it connects to a relay: about 1 s of a 1.2 s start (benchmarks/startup.py). ``EXTENDCIRCUIT
    0`` (a general circuit, on a path tor picks) makes it connect now. Without a usable consensus
    yet, tor refuses the circuit and bootstraps as it would have. None when tor's control port
    is not there yet, or is another tor's: ownership is then taken after the bootstrap.
    """
    if not port_file.is_file():
        return None
    try:
        launched = _take_ownership(process, port_file, data_dir, timeout)
    except TorUnavailable as exc:
        log.debug("tor's control port is not usable yet (%s); taking ownership after its bootstrap", exc)
        return None
    try:
        if int(launched.controller.get_info("process/pid")) != process.pid:
            launched.controller.close()  # the file names another tor (one racing for this data dir)
            return None
        launched.controller.new_circuit(await_build=False)  # EXTENDCIRCUIT 0
    except stem.ControllerError as exc:
        log.debug("tor built no first circuit on request (%s); it will when it is ready", exc)
    except BaseException:
        launched.controller.close()
        raise
    return launched


def _take_ownership(process: subprocess.Popen[bytes], port_file: Path, data_dir: Path, timeout: float) -> LaunchedTor:
    """Connect the owning controller and read back the ports tor picked."""
    # The file holds e.g. "PORT=127.0.0.1:40123"; tor writes it before it bootstraps.
    text = port_file.read_text().strip()
    host, _, port = text.removeprefix("PORT=").rpartition(":")
    endpoint = TorEndpoint(control_host=host, control_port=int(port))
    # The first authentication from the owning PID sends TAKEOWNERSHIP (stem does this).
    controller = open_controller(endpoint, timeout=timeout)
    try:
        socks_host, socks_port = controller.get_listeners(Listener.SOCKS)[0]
    except BaseException:
        controller.close()
        raise
    endpoint = TorEndpoint(socks_host=socks_host, socks_port=socks_port, control_host=host, control_port=int(port))
    log.info(
        "launched tor (pid %d): SOCKS %s:%d, control %s:%d",
        process.pid, socks_host, socks_port, host, endpoint.control_port,
    )  # fmt: skip
    return LaunchedTor(process, controller, endpoint, data_dir)
