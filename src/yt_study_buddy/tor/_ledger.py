"""Which Tor exit IPs were used when, shared by every thread, process and (with PostgreSQL) machine.

Each session leaves through an exit that nobody else holds and that is not cooling down or
quarantined. :class:`ExitLedger` holds the rules; a :class:`LedgerStore` holds the rows: one
SQLite file (the default, nothing to install) or one PostgreSQL schema (``postgresql://...``,
see ``_ledger_postgres``) that several machines share. A reservation is one write transaction
that holds the store's write lock from its first statement (SQLite's ``BEGIN IMMEDIATE``,
PostgreSQL's table lock), so it is atomic across threads, processes and machines, with no
hand-made lock that could deadlock or be bypassed (the original project's JSON trackers had
both problems); a unique index refuses a second live lease on one exit whatever the code does.

Times are stored as integer microseconds since the Unix epoch (UTC), so they round-trip
exactly and compare correctly across time zones; they come from the store's clock (this
machine's for a file, the server's for PostgreSQL) unless the caller passes one. History is
append-only; a store that is not a ledger, is damaged, or has an unknown schema raises
:class:`LedgerError` and is never reset.

Each operation opens its own short-lived connection, so threads never share one and a forked
or spawned worker never inherits an open handle.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from yt_study_buddy._exceptions import LedgerError, LedgerSchemaError
from yt_study_buddy._settings import ledger_path

from ._redaction import redact

log = logging.getLogger(__name__)

#: The schema version this module writes (SQLite: PRAGMA user_version; PostgreSQL: ledger_meta).
SCHEMA_VERSION = 1

#: History outcomes the ledger writes itself; callers choose their own for release/record_use.
QUARANTINED = "quarantined"
ABANDONED = "abandoned"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = (
    """CREATE TABLE exits (
        exit_ip TEXT PRIMARY KEY,
        fingerprint TEXT,
        last_used_at INTEGER,
        quarantined_until INTEGER
    )""",
    """CREATE TABLE leases (
        lease_id INTEGER PRIMARY KEY AUTOINCREMENT,
        exit_ip TEXT NOT NULL,
        fingerprint TEXT,
        holder TEXT NOT NULL,
        reserved_at INTEGER NOT NULL,
        ended_at INTEGER,
        end_reason TEXT CHECK (end_reason IN ('released', 'cancelled', 'abandoned'))
    )""",
    # The database itself refuses a second live lease on one exit, whatever the code above does.
    "CREATE UNIQUE INDEX one_live_lease_per_exit ON leases (exit_ip) WHERE ended_at IS NULL",
    # video_id holds the use's label (what the caller used the exit for): the name is schema 1's,
    # kept so that ledgers written before still open.
    """CREATE TABLE history (
        record_id INTEGER PRIMARY KEY AUTOINCREMENT,
        exit_ip TEXT NOT NULL,
        fingerprint TEXT,
        video_id TEXT,
        lease_id INTEGER,
        reserved_at INTEGER,
        ended_at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT
    )""",
    "CREATE INDEX history_by_exit ON history (exit_ip, record_id)",
)

#: The URL schemes that put the ledger in PostgreSQL; anything else is a SQLite file's path.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

_STATE_QUERY = """
    SELECT e.exit_ip, e.fingerprint, e.last_used_at, e.quarantined_until, l.holder, l.reserved_at
    FROM exits AS e LEFT JOIN leases AS l ON l.exit_ip = e.exit_ip AND l.ended_at IS NULL
"""

_HISTORY_FIELDS = (
    "exit_ip",
    "fingerprint",
    "video_id",  # the label column (see the schema)
    "lease_id",
    "reserved_at",
    "ended_at",
    "outcome",
    "detail",
)

# SQL below runs on both stores: qmark parameters (the PostgreSQL store translates them),
# ON CONFLICT and RETURNING (SQLite 3.35+), CASE instead of SQLite's two-argument MAX().
_LATER_LAST_USE = (
    "UPDATE exits SET last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? "
    "ELSE last_used_at END WHERE exit_ip = ?"
)
_LATER_QUARANTINE = (
    "UPDATE exits SET quarantined_until = CASE WHEN quarantined_until IS NULL OR quarantined_until < ? "
    "THEN ? ELSE quarantined_until END WHERE exit_ip = ?"
)

_LOCKED_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_DAMAGED_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


@dataclass(frozen=True)
class PostgresDsn:
    """A ``postgresql://`` URL naming a ledger's database. Its password never shows: ``str()``
    and ``repr()`` give the redacted URL (better still, keep it in ``~/.pgpass`` or PGPASSWORD)."""

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(POSTGRES_SCHEMES):
            raise ValueError(f"not a PostgreSQL URL: {self.redacted!r}")

    @property
    def redacted(self) -> str:
        return redact(self.url)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"PostgresDsn({self.redacted!r})"


def parse_ledger_location(text: str | os.PathLike[str]) -> Path | PostgresDsn:
    """``postgresql://...`` (or ``postgres://``) means PostgreSQL; anything else a SQLite file."""
    if isinstance(text, str) and text.startswith(POSTGRES_SCHEMES):
        return PostgresDsn(text)
    return Path(text)


class LedgerCursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class LedgerConnection(Protocol):
    """What the ledger's rules need of an open connection: qmark SQL in, row tuples out."""

    def execute(self, sql: str, parameters: tuple[Any, ...] = (), /) -> LedgerCursor: ...


class LedgerStore(Protocol):
    """Where a ledger keeps its rows; its errors are :class:`LedgerError` (or a subclass), one
    clear line each, naming :attr:`location`."""

    #: Where the rows are, for messages: a path, or a URL without its password.
    location: str
    #: The SQLite file, or None for a server.
    path: Path | None

    def open(self) -> None:
        """Create the schema in an empty store, or check an existing one without changing it."""

    def read(self) -> AbstractContextManager[LedgerConnection]:
        """A connection for reads; it is closed (and anything uncommitted dropped) on exit."""

    def write(self) -> AbstractContextManager[LedgerConnection]:
        """One transaction holding the store's write lock from its start, committed on exit."""

    def now_us(self, conn: LedgerConnection) -> int:
        """The store's clock, in microseconds since the epoch (the server's, for a server)."""


@dataclass(frozen=True)
class ExitLease:
    """Proof that ``holder`` may use ``exit_ip`` now; end it with release() or cancel()."""

    lease_id: int
    exit_ip: str
    fingerprint: str | None
    holder: str
    reserved_at: datetime


@dataclass(frozen=True)
class ExitState:
    """What the ledger knows about one exit at the moment it was asked."""

    exit_ip: str
    fingerprint: str | None
    last_used_at: datetime | None
    quarantined_until: datetime | None
    #: The live holder of a lease on this exit; a stale lease does not count.
    reserved_by: str | None
    #: When the exit can be reserved again; None means now. For a reserved exit this is the
    #: earliest it could be: released right now and then cooled down.
    free_at: datetime | None


@dataclass(frozen=True)
class UseRecord:
    """One history row: a use of an exit, a quarantine, or a lease found abandoned."""

    record_id: int
    exit_ip: str
    fingerprint: str | None
    #: What the exit was used for, as the caller labelled the session.
    label: str | None
    lease_id: int | None
    reserved_at: datetime | None
    ended_at: datetime
    outcome: str
    detail: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger needs aware times")
    return (moment - _EPOCH) // _MICROSECOND


def _at(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def _maybe_at(value: int | None) -> datetime | None:
    return None if value is None else _at(value)


def _normalise_ip(exit_ip: str) -> str:
    """One spelling per address, so '2001:db8::1' and '2001:DB8:0::1' are the same exit."""
    try:
        return str(ipaddress.ip_address(exit_ip.strip()))
    except ValueError:
        raise ValueError(f"not an IP address: {exit_ip!r}") from None


def _require_text(name: str, value: str) -> None:
    if not value.strip():
        raise ValueError(f"{name} must not be empty")


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill() would terminate the process there; lease_ttl still applies.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # It exists, under another user.
        return True
    return True


def _holder_host_pid(holder: str) -> tuple[str, int] | None:
    """The host and pid make_holder() put into ``holder``, or None for a foreign holder string."""
    ident = holder.rpartition("@")[2]
    parts = ident.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) <= 0:
        return None
    return parts[0], int(parts[1])


class ExitLedger:
    """Reservations, cooldowns, quarantines and use history of Tor exits, in one store.

    ``location`` is a SQLite file's path, a ``postgresql://`` URL (:class:`PostgresDsn`; needs
    the ``postgres`` extra), or a :class:`LedgerStore`. The cooldown of an exit runs from its
    last use (release() or record_use()), not from when it was reserved. Safe to share between
    threads; other processes (and, with PostgreSQL, other machines) may open the same store.
    ``clock`` replaces the store's clock (tests move it by hand).
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | PostgresDsn | LedgerStore,
        *,
        cooldown: timedelta,
        quarantine: timedelta = timedelta(hours=6),
        lease_ttl: timedelta = timedelta(hours=2),
        busy_timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if cooldown < timedelta(0):
            raise ValueError("cooldown must not be negative")
        if quarantine <= timedelta(0) or lease_ttl <= timedelta(0):
            raise ValueError("quarantine and lease_ttl must be positive")
        if busy_timeout <= 0:
            raise ValueError("busy_timeout must be positive")
        self._cooldown_us = cooldown // _MICROSECOND
        self._quarantine = quarantine
        self._lease_ttl_us = lease_ttl // _MICROSECOND
        self._clock = clock
        self._host = socket.gethostname()
        self._closed = False
        self._store = open_store(location, busy_timeout=busy_timeout)
        #: Where the rows are, for messages (a URL's password is never in it).
        self.location = self._store.location
        #: The SQLite file; None when the ledger lives in PostgreSQL.
        self.path = self._store.path
        self._store.open()

    @staticmethod
    def default_path() -> Path:
        """The per-user ledger, shared by every run of this user on this machine."""
        return ledger_path()

    @staticmethod
    def make_holder(label: str = "") -> str:
        """A holder id naming this host and process, so a lease left by a dead process is
        recognised as stale; the random part keeps holders within one process apart."""
        ident = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        return f"{label}@{ident}" if label else ident

    # -- writes ------------------------------------------------------------------------------

    def try_reserve(self, exit_ip: str, fingerprint: str | None = None, *, holder: str) -> ExitLease | None:
        """Lease ``exit_ip`` to ``holder`` if nobody holds it and it is neither cooling nor
        quarantined; otherwise None. A stale lease on it is ended first (outcome 'abandoned')."""
        exit_ip = _normalise_ip(exit_ip)
        _require_text("holder", holder)
        with self._write() as conn:
            now = self._now_us(conn)
            self._end_stale_lease(conn, exit_ip, now)
            row = conn.execute(_STATE_QUERY + " WHERE e.exit_ip = ?", (exit_ip,)).fetchone()
            if row is not None and self._state(row, now).free_at is not None:
                return None
            self._touch_exit(conn, exit_ip, fingerprint)
            lease_id = conn.execute(
                "INSERT INTO leases (exit_ip, fingerprint, holder, reserved_at) VALUES (?, ?, ?, ?) RETURNING lease_id",
                (exit_ip, fingerprint, holder, now),
            ).fetchone()[0]
        log.debug("lease %d: %s reserved by %s", lease_id, exit_ip, holder)
        return ExitLease(lease_id, exit_ip, fingerprint, holder, _at(now))

    def release(self, lease: ExitLease, *, outcome: str, label: str | None = None) -> None:
        """End a lease whose exit was used: its cooldown starts now, and a history row is added.

        A lease already ended as stale (its holder took longer than lease_ttl) is still
        recorded as a use. Releasing a lease twice, or after cancel(), raises ValueError.
        """
        _require_text("outcome", outcome)
        with self._write() as conn:
            now = self._now_us(conn)
            row = conn.execute(
                "SELECT exit_ip, reserved_at, ended_at, end_reason FROM leases WHERE lease_id = ?",
                (lease.lease_id,),
            ).fetchone()
            if row is None or row[0] != lease.exit_ip:
                raise ValueError(f"lease {lease.lease_id} on {lease.exit_ip} is not in {self.location}")
            _, reserved_at, ended_at, end_reason = row
            if ended_at is None:
                conn.execute(
                    "UPDATE leases SET ended_at = ?, end_reason = 'released' WHERE lease_id = ?",
                    (now, lease.lease_id),
                )
            elif end_reason == ABANDONED:
                log.warning(
                    "lease %d on %s was ended as stale before its release; recording its use",
                    lease.lease_id,
                    lease.exit_ip,
                )
            else:
                raise ValueError(f"lease {lease.lease_id} on {lease.exit_ip} was already {end_reason}")
            self._record(
                conn,
                lease.exit_ip,
                lease.fingerprint,
                now,
                outcome=outcome,
                label=label,
                lease_id=lease.lease_id,
                reserved_at=reserved_at,
            )
        log.debug("lease %d: %s released (%s)", lease.lease_id, lease.exit_ip, outcome)

    def cancel(self, lease: ExitLease) -> None:
        """End a lease whose exit was never used: no cooldown and no history row.

        Safe in cleanup paths: cancelling a lease that already ended does nothing.
        """
        with self._write() as conn:
            conn.execute(
                "UPDATE leases SET ended_at = ?, end_reason = 'cancelled' WHERE lease_id = ? AND ended_at IS NULL",
                (self._now_us(conn), lease.lease_id),
            )
        log.debug("lease %d: %s cancelled", lease.lease_id, lease.exit_ip)

    def record_use(
        self,
        exit_ip: str,
        fingerprint: str | None = None,
        *,
        outcome: str,
        label: str | None = None,
    ) -> None:
        """Record a use without a lease (say a stream that drifted onto another exit)."""
        exit_ip = _normalise_ip(exit_ip)
        _require_text("outcome", outcome)
        with self._write() as conn:
            self._record(conn, exit_ip, fingerprint, self._now_us(conn), outcome=outcome, label=label)

    def quarantine(
        self,
        exit_ip: str,
        fingerprint: str | None = None,
        *,
        reason: str,
        duration: timedelta | None = None,
    ) -> None:
        """Keep an exit out of use (say YouTube blocked it) for ``duration`` or the ledger's
        default. An existing longer quarantine is kept; leases are left to release()."""
        exit_ip = _normalise_ip(exit_ip)
        _require_text("reason", reason)
        duration = self._quarantine if duration is None else duration
        if duration <= timedelta(0):
            raise ValueError("quarantine duration must be positive")
        with self._write() as conn:
            now = self._now_us(conn)
            until = now + duration // _MICROSECOND
            self._touch_exit(conn, exit_ip, fingerprint)
            conn.execute(_LATER_QUARANTINE, (until, until, exit_ip))
            self._append_history(conn, exit_ip, fingerprint, now, outcome=QUARANTINED, detail=reason)
        log.info("exit %s quarantined until %s UTC: %s", exit_ip, f"{_at(until):%Y-%m-%d %H:%M}", reason)

    # -- reads -------------------------------------------------------------------------------

    def state(self, exit_ip: str) -> ExitState | None:
        """The exit's state now, or None if the ledger has never seen it."""
        exit_ip = _normalise_ip(exit_ip)
        with self._read() as conn:
            row = conn.execute(_STATE_QUERY + " WHERE e.exit_ip = ?", (exit_ip,)).fetchone()
            now = self._now_us(conn)
        return None if row is None else self._state(row, now)

    def unavailable(self) -> list[ExitState]:
        """Every exit that is cooling, quarantined or reserved right now, soonest free first."""
        with self._read() as conn:
            rows = conn.execute(_STATE_QUERY).fetchall()
            now = self._now_us(conn)
        states = [state for state in (self._state(row, now) for row in rows) if state.free_at]
        return sorted(states, key=lambda state: (state.free_at, state.exit_ip))

    def earliest_free_at(self, exit_ips: Iterable[str] | None = None) -> datetime | None:
        """Among the given (or all known) exits that are unavailable now, the earliest moment
        one becomes free; None if none of them is unavailable."""
        wanted = None if exit_ips is None else {_normalise_ip(ip) for ip in exit_ips}
        moments = [
            state.free_at
            for state in self.unavailable()
            if state.free_at is not None and (wanted is None or state.exit_ip in wanted)
        ]
        return min(moments, default=None)

    def history(self, *, limit: int = 100, exit_ip: str | None = None) -> list[UseRecord]:
        """The newest history rows first, of one exit or of all."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        query = f"SELECT record_id, {', '.join(_HISTORY_FIELDS)} FROM history"
        params: tuple[object, ...] = (limit,)
        if exit_ip is not None:
            query += " WHERE exit_ip = ?"
            params = (_normalise_ip(exit_ip), limit)
        with self._read() as conn:
            rows = conn.execute(query + " ORDER BY record_id DESC LIMIT ?", params).fetchall()
        return [
            UseRecord(
                record_id=row[0],
                exit_ip=row[1],
                fingerprint=row[2],
                label=row[3],
                lease_id=row[4],
                reserved_at=_maybe_at(row[5]),
                ended_at=_at(row[6]),
                outcome=row[7],
                detail=row[8],
            )
            for row in rows
        ]

    def close(self) -> None:
        """Refuse further use. Holds no connection between operations, so nothing else to do."""
        self._closed = True

    def __enter__(self) -> ExitLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _now_us(self, conn: LedgerConnection) -> int:
        return self._store.now_us(conn) if self._clock is None else _to_us(self._clock())

    def _read(self) -> AbstractContextManager[LedgerConnection]:
        self._check_open()
        return self._store.read()

    def _write(self) -> AbstractContextManager[LedgerConnection]:
        self._check_open()
        return self._store.write()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"exit ledger {self.location} is closed")

    def _is_stale(self, holder: str, reserved_at: int, now: int) -> bool:
        if now - reserved_at >= self._lease_ttl_us:
            return True
        host_pid = _holder_host_pid(holder)
        return host_pid is not None and host_pid[0] == self._host and not _pid_alive(host_pid[1])

    def _state(self, row: tuple[Any, ...], now: int) -> ExitState:
        """Row of _STATE_QUERY -> state at ``now``; the one place that decides availability."""
        exit_ip, fingerprint, last_used, quarantined_until, holder, reserved_at = row
        reserved_by = None
        if holder is not None:
            if self._is_stale(holder, reserved_at, now):
                # Its holder is gone; it may have used the exit, so count it as used then.
                last_used = reserved_at if last_used is None else max(last_used, reserved_at)
            else:
                reserved_by = holder
        cooling_until = None if last_used is None else last_used + self._cooldown_us
        blocked_until = [t for t in (cooling_until, quarantined_until) if t is not None and t > now]
        if reserved_by is not None:
            blocked_until.append(now + self._cooldown_us)
        free_at = max(blocked_until, default=None)
        return ExitState(
            exit_ip=exit_ip,
            fingerprint=fingerprint,
            last_used_at=_maybe_at(last_used),
            quarantined_until=_maybe_at(quarantined_until),
            reserved_by=reserved_by,
            free_at=_maybe_at(free_at),
        )

    def _end_stale_lease(self, conn: LedgerConnection, exit_ip: str, now: int) -> None:
        """End a stale lease on ``exit_ip``, counting the exit as used when it was reserved."""
        row = conn.execute(
            "SELECT lease_id, fingerprint, holder, reserved_at FROM leases WHERE exit_ip = ? AND ended_at IS NULL",
            (exit_ip,),
        ).fetchone()
        if row is None or not self._is_stale(row[2], row[3], now):
            return
        lease_id, fingerprint, holder, reserved_at = row
        log.warning("lease %d on %s by %s is stale; ending it", lease_id, exit_ip, holder)
        conn.execute(
            "UPDATE leases SET ended_at = ?, end_reason = 'abandoned' WHERE lease_id = ?",
            (now, lease_id),
        )
        conn.execute(_LATER_LAST_USE, (reserved_at, reserved_at, exit_ip))
        self._append_history(
            conn,
            exit_ip,
            fingerprint,
            now,
            outcome=ABANDONED,
            detail=holder,
            lease_id=lease_id,
            reserved_at=reserved_at,
        )

    @staticmethod
    def _touch_exit(conn: LedgerConnection, exit_ip: str, fingerprint: str | None) -> None:
        conn.execute("INSERT INTO exits (exit_ip) VALUES (?) ON CONFLICT (exit_ip) DO NOTHING", (exit_ip,))
        if fingerprint is not None:
            conn.execute("UPDATE exits SET fingerprint = ? WHERE exit_ip = ?", (fingerprint, exit_ip))

    def _record(
        self,
        conn: LedgerConnection,
        exit_ip: str,
        fingerprint: str | None,
        now: int,
        *,
        outcome: str,
        label: str | None,
        lease_id: int | None = None,
        reserved_at: int | None = None,
    ) -> None:
        """A use ending now: the cooldown starts, and history gets a row."""
        self._touch_exit(conn, exit_ip, fingerprint)
        conn.execute(_LATER_LAST_USE, (now, now, exit_ip))
        self._append_history(
            conn,
            exit_ip,
            fingerprint,
            now,
            outcome=outcome,
            label=label,
            lease_id=lease_id,
            reserved_at=reserved_at,
        )

    @staticmethod
    def _append_history(
        conn: LedgerConnection,
        exit_ip: str,
        fingerprint: str | None,
        ended_at: int,
        *,
        outcome: str,
        label: str | None = None,
        detail: str | None = None,
        lease_id: int | None = None,
        reserved_at: int | None = None,
    ) -> None:
        conn.execute(
            f"INSERT INTO history ({', '.join(_HISTORY_FIELDS)}) VALUES ({', '.join('?' * len(_HISTORY_FIELDS))})",
            (exit_ip, fingerprint, label, lease_id, reserved_at, ended_at, outcome, detail),
        )


def open_store(
    location: str | os.PathLike[str] | PostgresDsn | LedgerStore, *, busy_timeout: float = 10.0
) -> LedgerStore:
    """The store ``location`` names: a path (SQLite), a ``postgresql://`` URL, or a store as is.
    ``busy_timeout`` bounds each wait for another writer's lock, in seconds."""
    if isinstance(location, (str, os.PathLike)):
        location = parse_ledger_location(location)
    if isinstance(location, Path):
        return SqliteStore(location, busy_timeout=busy_timeout)
    if isinstance(location, PostgresDsn):
        try:
            from ._ledger_postgres import PostgresStore
        except ImportError as exc:  # the optional extra is missing
            raise LedgerError(
                f"exit ledger {location}: PostgreSQL needs psycopg ({exc}); "
                "install it with: pip install 'yt-study-buddy[postgres]'"
            ) from None
        return PostgresStore(location, lock_timeout=busy_timeout)
    return location


class SqliteStore:
    """A ledger in one SQLite file (WAL): the file lock orders writers across processes."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path: Path | None = Path(path).absolute()
        self._file = self.path
        self.location = str(self._file)
        self._busy_timeout = busy_timeout

    def open(self) -> None:
        """Create the schema in a new file, or check an existing one without writing to it."""
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the directory of exit ledger {self._file}: {exc}") from exc
        try:
            conn = sqlite3.connect(self._file, timeout=self._busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._create_schema(conn)
            elif version != SCHEMA_VERSION:
                raise self._wrong_schema(f"unknown schema version {version} (this program knows {SCHEMA_VERSION})")
            problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise self._unreadable("; ".join(problems[:3]))
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                log.info("exit ledger %s uses journal mode %s, not WAL", self._file, mode)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        # Another process may have created it while we waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise self._wrong_schema("it is a SQLite database, but not an exit ledger")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[LedgerConnection]:
        """A fresh connection to the existing file; closing it rolls back anything uncommitted."""
        try:
            conn = sqlite3.connect(
                f"{self._file.as_uri()}?mode=rw",
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[LedgerConnection]:
        """One write transaction, holding the file's write lock from its first statement."""
        with self.read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")

    def now_us(self, conn: LedgerConnection) -> int:
        """This machine's clock: the file is here."""
        return _to_us(_utc_now())

    def _error(self, exc: sqlite3.Error) -> LedgerError:
        code = getattr(exc, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        if primary in _LOCKED_CODES:
            return LedgerError(
                f"exit ledger {self._file} is locked: another process (or thread) has held it "
                f"for more than {self._busy_timeout:g} s"
            )
        if primary in _DAMAGED_CODES:
            return self._unreadable(str(exc))
        return LedgerError(f"cannot use exit ledger {self._file}: {exc}")

    def _unreadable(self, why: str) -> LedgerError:
        return LedgerError(f"exit ledger {self._file} is unreadable: {why}; move it aside to start a new one")

    def _wrong_schema(self, why: str) -> LedgerSchemaError:
        return LedgerSchemaError(f"exit ledger {self._file} is unreadable: {why}; move it aside to start a new one")
