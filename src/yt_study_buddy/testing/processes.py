"""The lab's tor processes: started with their output in their data directory, stopped by PID
only after /proc confirms the PID still belongs to this lab (never by process name)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def cmdline(pid: int) -> str:
    """The process's command line with spaces for NULs, or "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_mentioning(marker: str) -> list[int]:
    """Every live process whose command line contains ``marker`` (e.g. a lab's workdir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and marker in cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


class TorProcess:
    """One tor with ``-f <torrc>``; stdout and stderr go to ``<datadir>/stdout.log``."""

    def __init__(self, tor: str, nick: str, torrc: Path, defaults: Path, env: Mapping[str, str] | None = None) -> None:
        self.nick = nick
        self.datadir = torrc.parent
        argv = [tor, "-f", str(torrc), "--defaults-torrc", str(defaults)]
        with open(self.datadir / "stdout.log", "ab") as out:
            # A session of its own: a Ctrl-C meant for the launcher does not reach tor directly;
            # stop() and __OwningControllerProcess decide when tor ends.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.pid = self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of its logs, for error messages."""
        tail = []
        for name in ("stdout.log", "notice.log"):
            try:
                text = (self.datadir / name).read_text(errors="replace")
            except OSError:
                continue
            tail += text.splitlines()[-lines:]
        return "\n".join(tail)

    def signal_if_ours(self, sig: signal.Signals, marker: str) -> None:
        """Send ``sig`` only while the PID is unreaped and still runs this lab's torrc."""
        if self.alive() and marker in cmdline(self.pid):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> bool:
        """Reap it within ``timeout`` seconds; True when it has exited."""
        try:
            self._proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True


def stop_all(procs: Iterable[TorProcess], marker: str, grace: float = 10.0) -> None:
    """SIGTERM every process, SIGKILL what is left after ``grace`` seconds, and reap all."""
    procs = list(procs)
    for proc in procs:
        proc.signal_if_ours(signal.SIGTERM, marker)
    deadline = time.monotonic() + grace
    for proc in procs:
        if not proc.wait(deadline - time.monotonic()):
            log.warning("tor %s (pid %d) ignored SIGTERM; killing it", proc.nick, proc.pid)
            proc.signal_if_ours(signal.SIGKILL, marker)
            proc.wait(5.0)
