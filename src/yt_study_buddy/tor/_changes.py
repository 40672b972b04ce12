"""What a client changed in a tor, recorded outside the process so that a crash can be repaired.

The client turns ``ConfluxEnabled`` off while it runs and restores it on close. A process killed
with SIGKILL restores nothing, so each change is recorded *before* it is made, in a small SQLite
file in the state directory: which tor (control endpoint, tor's pid and start time), which
setting, its original value, the value we set, and which process set it. Nothing secret is
recorded. A clean close restores the setting and deletes the record; ``doctor --fix`` (or the
next client on that tor, when it closes) restores what a dead process left.

A setting found at our value *without* a record was set by the user or a torrc (a tor we
launch has ``ConfluxEnabled 0`` in its torrc): it is never touched. Several clients on one tor
share a change: the last one to close restores it.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stem.response
from stem.control import Controller

from .._exceptions import TorChangesError
from .._settings import TOR_CHANGES_FILENAME
from .._settings import state_dir as default_state_dir
from ._endpoint import TorEndpoint

log = logging.getLogger(__name__)

FILENAME = TOR_CHANGES_FILENAME
#: tor's start time is derived from its uptime (whole seconds) and our clock; allow for both.
START_SLACK = 10
_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    control TEXT NOT NULL,
    tor_pid INTEGER NOT NULL,
    tor_started INTEGER NOT NULL,
    setting TEXT NOT NULL,
    original TEXT NOT NULL,
    was_default INTEGER NOT NULL,
    ours TEXT NOT NULL,
    holder TEXT NOT NULL,
    holder_host TEXT NOT NULL,
    holder_pid INTEGER NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (control, setting, holder)
)
"""
_COLUMNS = (
    "control, tor_pid, tor_started, setting, original, was_default, ours, holder, holder_host, holder_pid, changed_at"
)


@dataclass(frozen=True)
class TorInstance:
    """One run of one tor: a restarted tor has forgotten every SETCONF, so it is another."""

    control: str
    pid: int
    started: int

    def same_as(self, other: TorInstance) -> bool:
        return (self.control, self.pid) == (other.control, other.pid) and abs(
            self.started - other.started
        ) <= START_SLACK


@dataclass(frozen=True)
class Change:
    """A setting a client changed in one tor, and what to put back."""

    tor: TorInstance
    setting: str
    #: The value tor reported before the change; ``was_default``: it came from no torrc line or
    #: SETCONF, so it is put back with RESETCONF.
    original: str
    was_default: bool
    ours: str
    holder: str
    holder_host: str
    holder_pid: int
    changed_at: datetime

    @property
    def holder_alive(self) -> bool:
        """Whether the process that made the change may still run (unknown counts as alive)."""
        return self.holder_host != socket.gethostname() or _pid_alive(self.holder_pid)

    @property
    def original_text(self) -> str:
        return f"tor's default ({self.original})" if self.was_default else self.original


def identify(controller: Controller, endpoint: TorEndpoint) -> TorInstance:
    """The tor behind ``controller``, told apart from an earlier or later tor on the same port."""
    pid = controller.get_info("process/pid", "")
    uptime = controller.get_info("uptime", "")
    return TorInstance(
        control=f"{endpoint.control_host}:{endpoint.control_port}",
        pid=int(pid) if pid.isdigit() else 0,
        started=int(time.time()) - (int(uptime) if uptime.isdigit() else 0),
    )


def read_setting(controller: Controller, setting: str) -> tuple[str, bool]:
    """The setting's value and whether it is tor's default, asked of tor now (stem caches
    GETCONF answers and learns of other controllers' changes only by a later event)."""
    reply = controller.msg(f"GETCONF {setting}")
    stem.response.convert("GETCONF", reply)
    values: list[str | None] = next((v for k, v in reply.entries.items() if k.lower() == setting.lower()), [])
    value = values[0] if values and values[0] is not None else ""
    prefix = f"{setting.lower()} "
    is_set = any(line.lower().startswith(prefix) for line in controller.get_info("config-text").splitlines())
    return value, not is_set


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill() would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class TorChanges:
    """The file of changes; every method is one transaction, safe across threads and processes.

    The transaction holds the file's write lock while it reads and sets tor's setting, so two
    clients starting or closing at once cannot both decide to restore (or both to skip it).
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path).absolute()
        self._busy_timeout = busy_timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._transaction() as conn:
                conn.execute(_SCHEMA)
        except OSError as exc:
            raise TorChangesError(f"cannot create {self.path}: {exc.strerror or exc}") from None

    @staticmethod
    def default_path(state_dir: Path | None = None) -> Path:
        return (state_dir or default_state_dir()) / FILENAME

    def apply(self, controller: Controller, tor: TorInstance, setting: str, ours: str, holder: str) -> Change | None:
        """Set ``setting`` to ``ours`` for ``holder``, recorded first; None when it was already
        ours by tor's own configuration (then nothing is changed, recorded or restored later).

        When it is ours because another client (alive, or dead: a crash) changed it, ``holder``
        shares that change, with its original value, and restores it if it closes last.
        """
        with self._transaction() as conn:
            records = self._records(conn, tor.control, setting)
            value, was_default = read_setting(controller, setting)
            shared = next(
                (change for change in records if change.tor.same_as(tor) and change.ours == ours == value), None
            )
            for change in records:
                if not change.holder_alive:  # what it changed is ours to restore now, or gone
                    self._delete(conn, change)
            if shared is not None:
                if not shared.holder_alive:
                    log.info(
                        "%s %s was left by a run that died (pid %d); it is restored when this one ends",
                        setting,
                        ours,
                        shared.holder_pid,
                    )
                return self._insert(conn, tor, setting, shared.original, shared.was_default, ours, holder)
            if value == ours:
                return None
            mine = self._insert(conn, tor, setting, value, was_default, ours, holder)
            controller.set_conf(setting, ours)
            return mine

    def restore(self, controller: Controller, change: Change) -> bool:
        """End ``change``: put the original value back unless another live client still needs
        ours (or someone set another value meanwhile). True when it was put back."""
        with self._transaction() as conn:
            self._delete(conn, change)
            others = [
                other
                for other in self._records(conn, change.tor.control, change.setting)
                if other.tor.same_as(change.tor) and other.ours == change.ours
            ]
            if any(other.holder_alive for other in others):
                log.debug("%s stays %s: another client on this tor still runs", change.setting, change.ours)
                return False
            restored = self._put_back(controller, change)
            for other in others:  # left by crashed runs: put back now too
                self._delete(conn, other)
            return restored

    def left_by_dead(self, controller: Controller, tor: TorInstance, setting: str) -> list[Change]:
        """Changes of ``setting`` on this tor whose makers died, if tor still has our value."""
        with self._transaction() as conn:
            records = [change for change in self._records(conn, tor.control, setting) if change.tor.same_as(tor)]
        value, _ = read_setting(controller, setting)
        if any(change.holder_alive for change in records):
            return []
        return [change for change in records if change.ours == value]

    def held_by_live(self, tor: TorInstance, setting: str) -> list[Change]:
        with self._transaction() as conn:
            records = self._records(conn, tor.control, setting)
        return [change for change in records if change.tor.same_as(tor) and change.holder_alive]

    def repair(self, controller: Controller, tor: TorInstance, setting: str) -> Change | None:
        """Put back what a dead process left (``doctor --fix``); the change put back, or None.

        Records of dead processes that no longer apply (their tor is gone, or the setting was set
        to another value since) are deleted; a live process's record is never touched.
        """
        with self._transaction() as conn:
            records = self._records(conn, tor.control, setting)
            if any(change.holder_alive and change.tor.same_as(tor) for change in records):
                return None
            value, _ = read_setting(controller, setting)
            dead = [change for change in records if not change.holder_alive]
            left = next((change for change in dead if change.tor.same_as(tor) and change.ours == value), None)
            if left is not None:
                self._put_back(controller, left)
            for change in dead:
                self._delete(conn, change)
            return left

    def records(self) -> list[Change]:
        """Every recorded change, for reports and tests."""
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM changes ORDER BY changed_at").fetchall()
        return [_change(row) for row in rows]

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _put_back(controller: Controller, change: Change) -> bool:
        value, _ = read_setting(controller, change.setting)
        if value != change.ours:
            log.info("%s is %s, not the %s we set: left as it is", change.setting, value, change.ours)
            return False
        if change.was_default:
            controller.reset_conf(change.setting)
        else:
            controller.set_conf(change.setting, change.original)
        log.info("restored tor's %s to %s", change.setting, change.original_text)
        return True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's lock from its start; rolled back on error."""
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise TorChangesError(f"cannot open {self.path}: {exc}") from None
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise TorChangesError(
                f"cannot use {self.path}: {exc} (it only records what runs changed in tor: "
                "move it aside if it is damaged)"
            ) from None
        finally:
            conn.close()  # without COMMIT, this rolls back

    @staticmethod
    def _records(conn: sqlite3.Connection, control: str, setting: str) -> list[Change]:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM changes WHERE control = ? AND setting = ?", (control, setting)
        ).fetchall()
        return [_change(row) for row in rows]

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        tor: TorInstance,
        setting: str,
        original: str,
        was_default: bool,
        ours: str,
        holder: str,
    ) -> Change:
        change = Change(
            tor, setting, original, was_default, ours, holder, socket.gethostname(), os.getpid(), datetime.now(UTC)
        )
        conn.execute(
            f"INSERT OR REPLACE INTO changes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tor.control,
                tor.pid,
                tor.started,
                setting,
                original,
                int(was_default),
                ours,
                holder,
                change.holder_host,
                change.holder_pid,
                change.changed_at.isoformat(),
            ),
        )
        return change

    @staticmethod
    def _delete(conn: sqlite3.Connection, change: Change) -> None:
        conn.execute(
            "DELETE FROM changes WHERE control = ? AND setting = ? AND holder = ?",
            (change.tor.control, change.setting, change.holder),
        )


def _change(row: tuple[Any, ...]) -> Change:
    control, tor_pid, tor_started, setting, original, was_default, ours, holder, host, pid, changed_at = row
    return Change(
        TorInstance(control, tor_pid, tor_started),
        setting,
        original,
        bool(was_default),
        ours,
        holder,
        host,
        pid,
        datetime.fromisoformat(changed_at),
    )
