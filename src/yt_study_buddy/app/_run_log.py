"""What each run did, per video, in an append-only JSON Lines file next to the notes.

The log is the batch's memory: like yt-dlp's download archive, a re-run skips every video whose
latest record says "fetched" and whose note is still there, and retries everything else. It is
also the audit trail of which Tor exits each video went through.

Worker threads and even concurrent runs append to one file, and a run can die at any moment, so
every line is one ``write()`` with ``O_APPEND`` (whole lines, never interleaved) under an
advisory file lock, followed by ``fsync``; an append the disk cannot take is cut off again, so a
full disk leaves no half line. The reader skips the one thing a crash can leave behind, a torn
line, and never raises.

Two runs may share an output directory: ``VideoClaims`` keeps them from fetching one video at
the same time, and ``DoneTracker`` tells each run what the other finished meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from .._exceptions import RunLogError
from ..notes._files import notes_in

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class VideoStatus(StrEnum):
    """What became of a video in a run; the value is what the log stores."""

    FETCHED = "fetched"
    SKIPPED = "skipped"
    FAILED = "failed"
    #: Not reached: the run was interrupted first.
    PENDING = "pending"


class ErrorKind(StrEnum):
    """Why a video was not fetched; the value is what the log stores.

    The first three are the fetch's own ``FailureKind``s (``ErrorKind(failure.kind)``).
    """

    BLOCKED = "blocked"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    #: No fresh exit was free, or none became ready in time.
    EXHAUSTED = "exhausted"
    #: The notes could not be written.
    OUTPUT = "output"
    #: The run was interrupted before the video was reached.
    INTERRUPTED = "interrupted"
    #: A bug: an exception nobody expected.
    INTERNAL = "internal"


@dataclass
class VideoResult:
    """The outcome of one video in one run: one "video" line in the log, one line on screen."""

    video_id: str
    status: VideoStatus
    worker: int | None = None
    exit_ip: str | None = None  # exit of the successful (or last) attempt
    exits_used: list[str] = field(default_factory=list)  # every exit tor actually used, all attempts
    attempts: int = 0
    error_kind: ErrorKind | None = None
    error_reason: str | None = None  # short slug, e.g. "ip_blocked", "no_transcript", "timeout"
    error: str | None = None  # one human line
    title: str | None = None
    files: list[str] = field(default_factory=list)  # the note files written
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, e.g. "fetch"
    started_at: str | None = None  # ISO-8601 UTC
    finished_at: str | None = None

    def __post_init__(self) -> None:
        # A typo here would silently miscount summaries and break skipping on the next run.
        try:
            self.status = VideoStatus(self.status)
        except ValueError:
            raise ValueError(
                f"unknown video status {self.status!r}; expected one of {sorted(map(str, VideoStatus))}"
            ) from None
        if self.error_kind is not None:
            self.error_kind = ErrorKind(self.error_kind)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def utc_timestamp() -> str:
    """Now as ISO-8601 UTC, the format of every time in the log."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_run_id() -> str:
    """A sortable, practically unique run id: UTC start time plus a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class RunLog:
    """Appends run and video records to ``path``; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def start_run(self, run_id: str, settings: dict[str, Any]) -> None:
        self._write(
            {"event": "run_start", "run_id": run_id, "at": utc_timestamp(), "pid": os.getpid(), "settings": settings}
        )

    def append(self, result: VideoResult, run_id: str) -> None:
        self._write({"event": "video", "run_id": run_id, **result.to_json()})

    def end_run(self, run_id: str, summary: dict[str, Any], pending: list[str]) -> None:
        """Close the run, listing the videos it never reached (the next run picks them up)."""
        self._write(
            {"event": "run_end", "run_id": run_id, "at": utc_timestamp(), "summary": summary, "pending": list(pending)}
        )

    def _write(self, record: dict[str, Any]) -> None:
        # A lone surrogate (seen in scraped titles) becomes a JSON \udXXX escape instead of an error.
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            try:
                self._append(data)
            except OSError as exc:
                raise RunLogError(f"cannot write the run log {self.path}: {exc.strerror or exc}") from exc

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o666)
        try:
            _lock_exclusively(fd)  # released by close(); makes the torn-tail check exact
            size = os.fstat(fd).st_size
            if _ends_torn(fd):
                # A crash left half a line: end it, or this record would be glued onto it and lost.
                data = b"\n" + data
            try:
                while data:  # one write in practice; a short write only happens on a full disk
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError:
                # The disk took part of the line: cut it off, so the log keeps whole lines only.
                _truncate(fd, size, self.path)
                raise
        finally:
            os.close(fd)

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """Every whole record in ``path``, oldest first; [] if it does not exist.

        Torn and unparsable lines are skipped with a warning: one bad line must not cost the
        whole history (and with it, every skip decision).
        """
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        torn_tail = lines.pop()  # b"" when the file ends with a newline, as it should
        records = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                record = _parse(line, path, number)
                if record is not None:
                    records.append(record)
        if torn_tail.strip():
            log.warning("%s: line %d is incomplete (a write was interrupted); ignoring it", path, len(lines) + 1)
        return records


def _lock_exclusively(fd: int) -> None:
    """Hold off other processes' appends while we look at the tail and write.

    Without it, a reader can see another process's line half copied and "repair" it with a
    stray newline. Windows has no ``flock``; there only ``O_APPEND`` protects the lines.
    """
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _lock_shared(fd: int) -> None:
    """Wait for an append in progress, so a reader never sees half of another run's line."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH)


def _truncate(fd: int, size: int, path: Path) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError as exc:  # the next append ends the torn line; the reader skips it
        log.warning("%s: could not cut off a failed append: %s", path, exc.strerror or exc)


def _ends_torn(fd: int) -> bool:
    """True if the file behind ``fd`` is non-empty and does not end with a newline.

    Moves only this descriptor's read position; ``O_APPEND`` writes still go to the end.
    """
    if os.fstat(fd).st_size == 0:
        return False
    os.lseek(fd, -1, os.SEEK_END)
    return os.read(fd, 1) != b"\n"


def _parse(line: bytes, path: Path, number: int) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        log.warning("%s: line %d is not JSON; ignoring it", path, number)
        return None
    if not isinstance(record, dict):
        log.warning("%s: line %d is not a JSON object; ignoring it", path, number)
        return None
    return record


def done_video_ids(path: Path, output_dir: Path) -> set[str]:
    """Ids a run can skip: their latest outcome is "fetched" and all their notes still exist.

    Only "fetched" and "failed" records are outcomes; "skipped" and "pending" ones say nothing
    new about the notes. Notes are looked up by file name in ``output_dir``, at its root or in
    their course folder, so moving the folder or running from another directory does not
    refetch. Deleting a note refetches it.
    """
    return DoneTracker(path, output_dir).done()


class DoneTracker:
    """``done_video_ids``, kept up to date with what other runs append to the log meanwhile.

    ``refresh()`` reads only the lines appended since the last read, so a run that checks again
    before each video (another run may have fetched it since) stays linear in the log's size.
    With ``since_now`` the records already in the log are ignored (``--force``), but those
    appended later still count. Safe to share between threads.
    """

    def __init__(self, path: Path, output_dir: Path, *, since_now: bool = False) -> None:
        self.path = Path(path)
        self.output_dir = Path(output_dir)
        self._latest: dict[str, dict[str, Any]] = {}
        self._folders: dict[Path, dict[str, list[Path]]] = {}  # course folders' notes, read once
        self._offset = 0
        self._line = 0
        self._lock = threading.Lock()
        if since_now:
            try:
                self._offset = self.path.stat().st_size
            except FileNotFoundError:
                pass
        else:
            self.refresh()

    def refresh(self) -> None:
        """Take in the whole lines appended since the last call."""
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            except FileNotFoundError:
                return
            try:
                _lock_shared(fd)
                os.lseek(fd, self._offset, os.SEEK_SET)
                chunks = []
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
            finally:
                os.close(fd)
            data = b"".join(chunks)
            end = data.rfind(b"\n") + 1  # a torn tail stays unread until it is ended
            self._offset += end
            for line in data[:end].split(b"\n")[:-1]:
                self._line += 1
                if line.strip():
                    record = _parse(line, self.path, self._line)
                    if record is not None:
                        self._take(record)

    def _take(self, record: dict[str, Any]) -> None:
        if record.get("event") == "video" and record.get("status") in (VideoStatus.FETCHED, VideoStatus.FAILED):
            video_id = record.get("video_id")
            if isinstance(video_id, str):
                self._latest[video_id] = record

    def is_done(self, video_id: str) -> bool:
        with self._lock:
            record = self._latest.get(video_id)
        return record is not None and self._notes(video_id, record) is not None

    def done(self) -> set[str]:
        with self._lock:
            latest = list(self._latest.items())
        return {video_id for video_id, record in latest if self._notes(video_id, record) is not None}

    def note_files(self, video_id: str) -> list[Path]:
        """The notes of the video's latest "fetched" record as they are now, wherever they are in
        ``output_dir`` (its root or a course folder); [] unless all of them are still there."""
        with self._lock:
            record = self._latest.get(video_id)
        return (self._notes(video_id, record) or []) if record is not None else []

    def _notes(self, video_id: str, record: dict[str, Any]) -> list[Path] | None:
        """A "fetched" record's notes as they are now; None if it is no "fetched" record, lists
        none (fetch again rather than trust it) or one of them is gone."""
        files = record.get("files")
        if record["status"] != VideoStatus.FETCHED or not isinstance(files, list) or not files:
            return None
        found = []
        for name in files:
            path = self._find(name, video_id) if isinstance(name, str) else None
            if path is None:
                return None
            found.append(path)
        return found

    def _find(self, name: str, video_id: str) -> Path | None:
        """A recorded note in ``output_dir``, so a moved output directory still counts: by its
        file name at the root, or in its course folder (the recorded path's last two parts),
        where the index may have renamed it since (its place in the course changed): then by
        the ``[<video id>]`` and the extension its name ends in."""
        recorded = Path(name)
        for path in (self.output_dir / recorded.name, self.output_dir / recorded.parent.name / recorded.name):
            if path.is_file():
                return path
        folder = self.output_dir / recorded.parent.name
        with self._lock:
            if folder not in self._folders:
                self._folders[folder] = notes_in(folder)
            candidates = self._folders[folder].get(video_id, [])
        return next((path for path in candidates if path.suffix == recorded.suffix and path.is_file()), None)


class VideoClaims:
    """One lock file per video under ``directory``, so two runs on one output directory never
    fetch the same video at once.

    A claim is an ``flock`` on ``<video id>.lock``, held while the video is fetched and recorded.
    The kernel drops it when its process dies, however it dies, so a crashed run leaves no stale
    claim behind (the file may stay; an unlocked file claims nothing). Where there is no
    ``flock`` (Windows) every claim succeeds at once.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def try_claim(self, video_id: str) -> Claim | None:
        """The video's claim, or None while another process holds it; OSError if none can be made."""
        path = self.directory / f"{video_id}.lock"
        if fcntl is None:
            return Claim(None, path)
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:  # the holder before us may have removed the file after we opened it
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return Claim(fd, path)
            os.close(fd)


class Claim:
    """A held ``VideoClaims`` claim; ``release()`` ends it."""

    def __init__(self, fd: int | None, path: Path) -> None:
        self._fd = fd
        self.path = path

    def release(self) -> None:
        """Remove the lock file, then unlock: whoever opened it meanwhile sees it gone and retries."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError as exc:  # an unlocked file left behind claims nothing
            log.debug("could not remove %s: %s", self.path, exc)
        finally:
            os.close(fd)
