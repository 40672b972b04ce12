"""Starting a tor of our own when none answers on the control port, and stopping it again.

The launched tor is owned by this process: it exits when our owning controller closes or when
this process dies (even by SIGKILL), so a crashed run never leaves a tor behind.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import platformdirs
import stem.process
from stem.control import Controller, Listener

from .._exceptions import TorUnavailable
from ._control import open_controller
from ._endpoint import TorEndpoint

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
_STOP_TIMEOUT = 10.0
_LOG_TAIL = 8
_POLL = 0.1
_INSTALL_HINT = (
    "install tor (Debian/Ubuntu: sudo apt install tor; macOS: brew install tor) "
    "or start one and point --tor-control at it"
)


def default_data_dir() -> Path:
    """Kept between runs: a cached consensus makes the next bootstrap take seconds."""
    return platformdirs.user_cache_path("yt-study-buddy") / "tor"


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
    options; a list value gives an option several lines (e.g. ``DirAuthority``). Works from any
    thread: the ``timeout`` is enforced by a watchdog, not by stem's SIGALRM.
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
        "Log": [f"notice file {data_dir / 'notice.log'}"],  # stem adds "NOTICE stdout"
        "AvoidDiskWrites": "1",
        **(extra_config or {}),
    }
    deadline = time.monotonic() + timeout
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL)

    def on_line(line: str) -> None:
        log.debug("tor: %s", line)
        tail.append(line)

    process: subprocess.Popen[bytes] | None = None
    why = ""
    with _Watchdog(pid_file, timeout) as watchdog:
        try:
            process = stem.process.launch_tor_with_config(
                config,
                tor_cmd=tor,
                completion_percent=100,
                init_msg_handler=on_line,
                timeout=None,  # stem's timeout needs SIGALRM and the main thread; ours does not
                take_ownership=True,
            )
        except OSError as exc:  # stem has killed and reaped tor
            why = f"exited before bootstrapping ({exc})"
    if watchdog.fired:
        why = "did not bootstrap in time"
        if process is not None:  # killed just as it reached 100 %
            process.wait()
    if process is None or watchdog.fired:
        raise TorUnavailable(_launch_failure(why, timeout, tail))
    try:
        return _take_ownership(process, port_file, data_dir, max(deadline - time.monotonic(), 1.0))
    except BaseException:
        process.kill()
        process.wait()
        raise


def _launch_failure(why: str, timeout: float, tail: Sequence[str]) -> str:
    lines = "\n".join(f"  {line}" for line in tail) or "  (no output)"
    return f"tor {why} (limit {timeout:g} s); its last log lines:\n{lines}"


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


def _take_ownership(
    process: subprocess.Popen[bytes], port_file: Path, data_dir: Path, timeout: float
) -> LaunchedTor:
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
    endpoint = TorEndpoint(
        socks_host=socks_host, socks_port=socks_port, control_host=host, control_port=int(port)
    )
    log.info(
        "launched tor (pid %d): SOCKS %s:%d, control %s:%d",
        process.pid, socks_host, socks_port, host, endpoint.control_port,
    )  # fmt: skip
    return LaunchedTor(process, controller, endpoint, data_dir)


class _Watchdog:
    """Kills tor if it has not bootstrapped in time.

    stem's ``launch_tor_with_config`` hides the process until it returns, so the PID comes from
    tor's PidFile. Killing ends tor's stdout, and stem raises and reaps the process. The kill
    happens only while the launch is still running, when the PID is certainly still tor's.
    """

    def __init__(self, pid_file: Path, timeout: float) -> None:
        self._pid_file = pid_file
        self._timeout = timeout
        self._done = threading.Event()
        self._lock = threading.Lock()
        #: Whether it killed tor (read after the ``with`` block).
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="tor-launch-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done.set()
        self._thread.join()

    def _run(self) -> None:
        if self._done.wait(self._timeout):
            return
        while True:
            with self._lock:
                if self._done.is_set():
                    return
                pid = _read_pid(self._pid_file)
                if pid is not None:
                    self.fired = True
                    log.debug("tor (pid %d) did not bootstrap in %g s: killing it", pid, self._timeout)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    return
            if self._done.wait(_POLL):  # tor has not even written its PID file yet
                return


def _read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
