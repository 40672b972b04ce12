"""Distributed runs: one job per video in PostgreSQL (procrastinate), workers on many machines,
each on its own tor, all sharing one exit ledger; the notes kept in the same database.

Why the notes live in the database: N machines rarely share a filesystem, and a note written
by exactly one worker is easiest to make certain with a primary key (``INSERT ... ON CONFLICT
DO NOTHING``) in the one place every worker already reaches. ``export`` writes them as files.

A job's life (see ``docs/architecture.md``): a worker takes it, reserves a fresh exit in the
shared ledger and fetches. A blocked exit is quarantined and the job goes back to the queue at
once (a fresh exit next time, on whichever worker takes it); no free exit: it is scheduled for
when the earliest exit frees up. A worker killed mid-job stops heartbeating; the other workers
put its jobs back (``retry_stalled``). A retried job whose note is already stored finishes
without fetching, so no video is fetched after its note is written, nor written twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as pq_exceptions
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from .._exceptions import (
    ExitsExhausted,
    FailureKind,
    FetchFailure,
    LedgerError,
    QueueError,
    StudyBuddyError,
    TorError,
)
from .._fs import write_atomic
from ..notes._files import note_stem
from ..notes._formatters import Provenance, render
from ..tor._client import RotatingTorClient
from ..tor._ledger import PostgresDsn
from ..tor._ledger_postgres import ConnectFailure, connect_failure, one_line
from ._fetcher import TorTranscriptFetcher, end_on_failure

log = logging.getLogger(__name__)

TASK_NAME = "yt_study_buddy.fetch_video"
#: Seconds: connecting, and any one statement, on the queue's database.
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT = 30
#: After a stop signal, jobs in flight get this long before they are put back in the queue.
STOP_GRACE = 10.0
#: A job the database could not take back (it was down) is retried this long later.
OUTAGE_RETRY = timedelta(seconds=5)
#: Seconds between a worker's looks for due jobs (one cheap indexed query): a job scheduled for
#: when an exit frees up starts within this of it.
JOB_POLL = 1.0
#: How long a worker waits for a new exit per job before it reschedules the job.
SESSION_TIMEOUT = 120.0

_TABLES = (
    """CREATE TABLE IF NOT EXISTS ytsb_notes (
        video_id TEXT PRIMARY KEY,
        title TEXT,
        files JSONB NOT NULL,
        exit_ip TEXT NOT NULL,
        worker TEXT NOT NULL,
        job_id BIGINT,
        fetched_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE IF NOT EXISTS ytsb_attempts (
        attempt_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id BIGINT NOT NULL,
        video_id TEXT NOT NULL,
        exit_ip TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        message TEXT,
        worker TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX IF NOT EXISTS ytsb_attempts_by_job ON ytsb_attempts (job_id)",
)
#: pg_advisory_xact_lock's key while the schema is created: "ytsq".
_SCHEMA_LOCK_KEY = 0x79747371


@dataclass(frozen=True)
class JobOptions:
    """What each video's job is asked for; fixed when it is enqueued."""

    formats: tuple[str, ...] = ("md",)
    languages: tuple[str, ...] = ("en",)
    translate_to: str | None = None
    max_attempts: int = 3

    def args(self) -> dict[str, Any]:
        return {
            "formats": list(self.formats),
            "languages": list(self.languages),
            "translate_to": self.translate_to,
            "max_attempts": self.max_attempts,
        }


@dataclass(frozen=True)
class Enqueued:
    added: list[str] = field(default_factory=list)
    #: Already done (a note stored), queued or running: not added again.
    already: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueueStatus:
    done: int
    running: int
    failed: int
    pending: int
    #: video id -> the last failure's message, for the failed videos.
    failures: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "running": self.running,
            "failed": self.failed,
            "pending": self.pending,
            "failures": [{"video_id": vid, "error": error} for vid, error in sorted(self.failures.items())],
        }


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 1
    #: Seconds between a worker's heartbeats; one silent for ``stalled_after`` is taken for dead.
    heartbeat: float = 10.0
    stalled_after: float = 30.0
    name: str = "worker"


class _RetryAt(Exception):
    """The job goes back to the queue, to run no sooner than ``when``."""

    def __init__(self, when: datetime, why: str) -> None:
        super().__init__(why)
        self.when = when


class _Retry(procrastinate.BaseRetryStrategy):
    """Only ``_RetryAt`` and a shutdown's abort put a job back; anything else fails it."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> procrastinate.RetryDecision | None:
        if isinstance(exception, _RetryAt):
            return procrastinate.RetryDecision(retry_at=exception.when)
        if isinstance(exception, pq_exceptions.JobAborted):
            return procrastinate.RetryDecision(retry_in={"seconds": 0})
        return None


class JobQueue:
    """The queue's database: procrastinate's tables and ours (notes, attempts), in the first
    schema of the URL's search_path."""

    def __init__(self, dsn: PostgresDsn) -> None:
        self.dsn = dsn
        params = conninfo_to_dict(dsn.url)
        params["options"] = f"{params.get('options') or ''} -c statement_timeout={STATEMENT_TIMEOUT}s".strip()
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        self._conninfo = make_conninfo("", **params)
        self._run_job: Callable[..., Any] | None = None
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self._conninfo,
                min_size=1,
                max_size=4,
                timeout=CONNECT_TIMEOUT,
            )
        )
        self.task = self.app.task(name=TASK_NAME, pass_context=True, retry=_Retry())(self._job)

    # -- the database ------------------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A connection in one transaction (committed on a clean exit); errors are one line."""
        with self.errors():
            conn = psycopg.connect(self._conninfo)
            try:
                with conn.transaction():
                    yield conn
            finally:
                conn.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """psycopg's and procrastinate's errors as one ``QueueError`` line, password hidden."""
        try:
            yield
        except (psycopg.Error, pq_exceptions.ConnectorException) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
            raise self.error_for(cause) from None

    def error_for(self, exc: BaseException) -> QueueError:
        where = self.dsn.redacted
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
            kind, message = connect_failure(exc, self.dsn.url)
            if kind is ConnectFailure.REFUSED:
                return QueueError(f"job queue {where} refused us: {message}")
            return QueueError(f"cannot reach job queue {where}: {message}")
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return QueueError(f"job queue {where} refused us: {one_line(exc, self.dsn.url)}")
        if isinstance(exc, psycopg.errors.InvalidSchemaName):
            return QueueError(
                f"job queue {where}: no schema of its search_path exists; create it, "
                "or name another with options=-csearch_path%3DNAME"
            )
        return QueueError(f"cannot use job queue {where}: {one_line(exc, self.dsn.url)}")

    def prepare(self) -> None:
        """Create the queue's tables in a schema that has none (once, whoever comes first)."""
        with self.connect() as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()
            if schema is None or schema[0] is None:
                raise psycopg.errors.InvalidSchemaName("no schema")
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_SCHEMA_LOCK_KEY,))
            if not self._has_queue(conn):
                conn.execute(self.app.schema_manager.get_schema())
                log.info("job queue created in schema %s of %s", schema[0], self.dsn.redacted)
            for statement in _TABLES:
                conn.execute(statement)

    def check(self) -> None:
        """A queue must exist here (status, export): else one line that says to enqueue first."""
        with self.connect() as conn:
            if not self._has_queue(conn):
                raise QueueError(f"no job queue in {self.dsn.redacted} yet: enqueue videos first")

    @staticmethod
    def _has_queue(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
        row = conn.execute(
            "SELECT to_regclass(quote_ident(current_schema()) || '.procrastinate_jobs') IS NOT NULL "
            "AND to_regclass(quote_ident(current_schema()) || '.ytsb_notes') IS NOT NULL"
        ).fetchone()
        return bool(row and row[0])

    # -- enqueue, status, export -------------------------------------------------------------

    def enqueue(self, video_ids: Sequence[str], options: JobOptions) -> Enqueued:
        """One job per video not done, queued or running; a failed one is queued again."""
        self.prepare()
        with self.connect() as conn:
            taken = {
                row[0]
                for row in conn.execute(
                    "SELECT video_id FROM ytsb_notes WHERE video_id = ANY(%s) UNION "
                    "SELECT queueing_lock FROM procrastinate_jobs WHERE task_name = %s "
                    "AND status IN ('todo', 'doing') AND queueing_lock = ANY(%s)",
                    (list(video_ids), TASK_NAME, list(video_ids)),
                ).fetchall()
            }
        todo = [vid for vid in dict.fromkeys(video_ids) if vid not in taken]
        added: list[str] = []
        already = [vid for vid in dict.fromkeys(video_ids) if vid in taken]

        async def defer() -> None:
            async with self.app.open_async():
                for vid in todo:
                    # queueing_lock: another enqueue racing this one adds the video once.
                    deferrer = self.task.configure(queueing_lock=vid, lock=vid)
                    try:
                        await deferrer.defer_async(video_id=vid, **options.args())
                    except pq_exceptions.AlreadyEnqueued:
                        already.append(vid)
                    else:
                        added.append(vid)

        with self.errors():
            asyncio.run(defer())
        return Enqueued(added, already)

    def status(self) -> QueueStatus:
        """Counts across all workers: a failed job counts until the video is queued again."""
        self.check()
        with self.connect() as conn:
            counts = dict(
                conn.execute(
                    "SELECT status::text, count(DISTINCT queueing_lock) FROM procrastinate_jobs "
                    "WHERE task_name = %s AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS later "
                    "WHERE later.task_name = %s AND later.queueing_lock = procrastinate_jobs.queueing_lock "
                    "AND later.id > procrastinate_jobs.id) GROUP BY status",
                    (TASK_NAME, TASK_NAME),
                ).fetchall()
            )
            failures = dict(
                conn.execute(
                    "SELECT DISTINCT ON (j.queueing_lock) j.queueing_lock, coalesce(a.message, 'the job failed') "
                    "FROM procrastinate_jobs AS j LEFT JOIN ytsb_attempts AS a ON a.job_id = j.id "
                    "WHERE j.task_name = %s AND j.status IN ('failed', 'aborted', 'cancelled') "
                    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS later WHERE later.task_name = %s "
                    "AND later.queueing_lock = j.queueing_lock AND later.id > j.id) "
                    "ORDER BY j.queueing_lock, a.attempt_id DESC NULLS LAST",
                    (TASK_NAME, TASK_NAME),
                ).fetchall()
            )
        return QueueStatus(
            done=counts.get("succeeded", 0),
            running=counts.get("doing", 0),
            failed=counts.get("failed", 0) + counts.get("aborted", 0) + counts.get("cancelled", 0),
            pending=counts.get("todo", 0),
            failures=failures,
        )

    def export(self, output: Path) -> list[Path]:
        """Write every stored note into ``output`` (atomically; an unchanged file is left as it is)."""
        self.check()
        output.mkdir(parents=True, exist_ok=True)
        written = []
        with self.connect() as conn:
            rows = conn.execute("SELECT video_id, title, files FROM ytsb_notes ORDER BY video_id").fetchall()
        for video_id, title, files in rows:
            stem = note_stem(title, video_id)
            for fmt, text in files.items():
                path = output / f"{stem}.{fmt}"
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    write_atomic(path, text)
                written.append(path)
        return written

    # -- the worker --------------------------------------------------------------------------

    def run_worker(self, client: RotatingTorClient, settings: WorkerSettings) -> None:
        """Run jobs until SIGINT/SIGTERM; the database going away and coming back is waited out."""
        self.prepare()
        worker = _Worker(self, client, settings)
        self._run_job = worker.run_job
        try:
            asyncio.run(worker.main())
        finally:
            self._run_job = None

    def _job(self, context: procrastinate.JobContext, /, **args: Any) -> None:
        assert self._run_job is not None, "jobs run only inside run_worker()"
        self._run_job(context, **args)

    # -- used by the worker's jobs (threads): a connection each time ---------------------------

    def note_exists(self, video_id: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM ytsb_notes WHERE video_id = %s", (video_id,)).fetchone() is not None

    def store_note(
        self, video_id: str, title: str | None, files: dict[str, str], exit_ip: str, worker: str, job_id: int
    ) -> bool:
        """Insert-if-absent: True if this call stored it."""
        with self.connect() as conn:
            stored = conn.execute(
                "INSERT INTO ytsb_notes (video_id, title, files, exit_ip, worker, job_id) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (video_id) DO NOTHING RETURNING 1",
                (video_id, title, Jsonb(files), exit_ip, worker, job_id),
            ).fetchone()
            conn.execute(
                "INSERT INTO ytsb_attempts (job_id, video_id, exit_ip, outcome, worker) VALUES (%s, %s, %s, 'fetched', %s)",
                (job_id, video_id, exit_ip, worker),
            )
        return stored is not None

    def record_failure(
        self, job_id: int, video_id: str, exit_ip: str | None, failure: FetchFailure, worker: str
    ) -> int:
        """Record a failed attempt; returns how many fetch attempts this job has failed."""
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO ytsb_attempts (job_id, video_id, exit_ip, outcome, reason, message, worker) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (job_id, video_id, exit_ip, failure.kind.value, failure.reason, str(failure), worker),
            )
            row = conn.execute(
                "SELECT count(*) FROM ytsb_attempts WHERE job_id = %s AND outcome <> 'fetched'", (job_id,)
            ).fetchone()
        assert row is not None
        return int(row[0])


class _Worker:
    """One machine's worker: procrastinate's worker on this event loop, jobs in threads, one
    tor client for them all (new sessions one at a time: the client's exit choice is serial)."""

    def __init__(self, queue: JobQueue, client: RotatingTorClient, settings: WorkerSettings) -> None:
        self.queue = queue
        self.client = client
        self.settings = settings
        self.stopping = threading.Event()  # set from the event loop; jobs read it in their threads
        self._session_lock = threading.Lock()
        self._signals = 0

    # -- the event loop ------------------------------------------------------------------------

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(self.settings.concurrency + 2, thread_name_prefix="job"))
        stop = asyncio.Event()

        def on_signal() -> None:
            self._signals += 1
            if self._signals == 1:
                log.info("stopping: jobs in flight get %.0f s, then go back to the queue", STOP_GRACE)
                self.stopping.set()
                stop.set()
            else:  # the second one: at once (jobs in flight are retried by the other workers)
                raise SystemExit(130)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        loop.set_exception_handler(self._loop_error)
        _library_logs_in_one_line(self.queue.dsn)
        try:
            # One pool for the whole run: its connections are checked before each use, so after
            # the server restarts it reconnects; procrastinate's worker is started again if the
            # outage stopped it (its heartbeat failed).
            async with self.queue.app.open_async():
                stalled = asyncio.create_task(self._retry_stalled(stop))
                try:
                    while not stop.is_set():
                        if not await self._run_once(stop):
                            await _wait(stop, OUTAGE_RETRY.total_seconds())
                finally:
                    stalled.cancel()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A job whose end could not be recorded (the database was away): one line, not a trace;
        the job is still ``doing`` and the stalled-job check puts it back."""
        exc = context.get("exception")
        if isinstance(exc, pq_exceptions.ConnectorException):
            log.warning("a job's end was not recorded: %s", self.queue.error_for(exc.__cause__ or exc))
        else:
            log.warning("%s: %s", context.get("message", "error in the event loop"), exc)

    async def _run_once(self, stop: asyncio.Event) -> bool:
        """procrastinate's worker until ``stop``; False when the database went away under it."""
        worker = asyncio.create_task(
            self.queue.app.run_worker_async(
                concurrency=self.settings.concurrency,
                name=self.settings.name,
                install_signal_handlers=False,
                shutdown_graceful_timeout=STOP_GRACE,
                update_heartbeat_interval=self.settings.heartbeat,
                stalled_worker_timeout=self.settings.stalled_after,
                # A job put back for later (no free exit) wakes no one: polling finds it.
                fetch_job_polling_interval=JOB_POLL,
                abort_job_polling_interval=JOB_POLL,
            )
        )
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not worker.done():
            worker.cancel()  # procrastinate's graceful stop: STOP_GRACE, then abort (retried)
        try:
            await worker
        except asyncio.CancelledError:
            pass
        except (psycopg.Error, pq_exceptions.ConnectorException, OSError) as exc:
            if not stop.is_set():
                cause = exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
                log.warning(
                    "%s; the worker starts again in %.0f s", self.queue.error_for(cause), OUTAGE_RETRY.total_seconds()
                )
            return stop.is_set()
        if stop.is_set():
            return True
        log.warning("the job queue's worker stopped; starting it again")
        return False

    async def _retry_stalled(self, stop: asyncio.Event) -> None:
        """Put back the jobs of workers gone silent (killed, cut off): every heartbeat."""
        manager = self.queue.app.job_manager
        while not stop.is_set():
            await _wait(stop, self.settings.heartbeat)
            try:
                for job in await manager.get_stalled_jobs(
                    task_name=TASK_NAME, seconds_since_heartbeat=self.settings.stalled_after
                ):
                    log.info("job %s (%s) was left by a silent worker: queued again", job.id, job.lock)
                    await manager.retry_job(job)
            except (psycopg.Error, pq_exceptions.ConnectorException, OSError) as exc:
                log.debug("stalled jobs not checked: %s", exc)

    # -- one job (a thread) ------------------------------------------------------------------

    def run_job(
        self,
        context: procrastinate.JobContext,
        *,
        video_id: str,
        formats: list[str],
        languages: list[str],
        translate_to: str | None,
        max_attempts: int,
    ) -> None:
        job_id = context.job.id
        assert job_id is not None
        try:
            if self.queue.note_exists(video_id):  # stored by an earlier run of this job
                log.info("%s: its note is stored already", video_id)
                return
        except QueueError as exc:
            raise _RetryAt(datetime.now(UTC) + OUTAGE_RETRY, str(exc)) from None
        if self.stopping.is_set() or context.should_abort():
            raise _RetryAt(datetime.now(UTC), "the worker is stopping")
        try:
            with self._session_lock:
                session = self.client.new_session(timeout=SESSION_TIMEOUT)
        except ExitsExhausted as exc:
            when = exc.retry_at or datetime.now(UTC) + timedelta(seconds=30)
            log.info("%s: no free exit; scheduled for %s", video_id, f"{when:%H:%M:%S} UTC")
            raise _RetryAt(when, str(exc)) from None
        except (LedgerError, TorError) as exc:
            log.warning("%s: %s; retried later", video_id, exc)
            raise _RetryAt(datetime.now(UTC) + OUTAGE_RETRY, str(exc)) from None
        session.label = video_id  # what the exit ledger records this use as
        exit_ip = session.exit_ip or "?"
        try:
            transcript = TorTranscriptFetcher(session=session).fetch_transcript(
                video_id, languages, translate_to=translate_to
            )
        except FetchFailure as failure:
            end_on_failure(session, failure)
            _close(session)
            self._failed(job_id, video_id, exit_ip, failure, max_attempts)
            return
        except BaseException:
            _close(session)
            raise
        _close(session)  # the transcript is in hand: the exit's cooldown starts now
        provenance = Provenance(exit_ip, datetime.now(UTC), context.job.attempts + 1)
        files = {fmt: render(transcript, fmt, provenance=provenance) for fmt in formats}
        try:
            stored = self.queue.store_note(video_id, transcript.title, files, exit_ip, self.settings.name, job_id)
        except QueueError as exc:
            raise _RetryAt(datetime.now(UTC) + OUTAGE_RETRY, str(exc)) from None
        log.info("%s: %s via exit %s", video_id, "stored" if stored else "stored by another worker", exit_ip)

    def _failed(self, job_id: int, video_id: str, exit_ip: str, failure: FetchFailure, max_attempts: int) -> None:
        try:
            failed = self.queue.record_failure(job_id, video_id, exit_ip, failure, self.settings.name)
        except QueueError as exc:
            raise _RetryAt(datetime.now(UTC) + OUTAGE_RETRY, str(exc)) from None
        if failure.kind is FailureKind.PERMANENT or failed >= max_attempts:
            log.warning("%s: %s (attempt %d, final)", video_id, failure, failed)
            raise _JobFailed(str(failure))
        log.info(
            "%s: %s on exit %s (attempt %d); queued again for a fresh exit", video_id, failure.reason, exit_ip, failed
        )
        raise _RetryAt(datetime.now(UTC), str(failure))


class _OneLine(logging.Handler):
    """A library's records to our handlers (redacted there), a traceback cut to one line: what
    failed and the error's message."""

    def __init__(self, dsn: PostgresDsn) -> None:
        super().__init__()
        self.dsn = dsn

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"{record.getMessage()}: {one_line(exc.__cause__ or exc, self.dsn.url)}"
            record.args, record.exc_info, record.exc_text = (), None, None
        for handler in logging.getLogger("yt_study_buddy").handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def _library_logs_in_one_line(dsn: PostgresDsn) -> None:
    """procrastinate's and psycopg's pool's warnings in one line each; the pool's reconnect
    attempts only at -v (our own lines say when the server is away)."""
    verbose = logging.getLogger("yt_study_buddy").level <= logging.DEBUG
    for name, level in (("procrastinate", logging.WARNING), ("psycopg.pool", logging.ERROR)):
        library = logging.getLogger(name)
        library.handlers[:] = [_OneLine(dsn)]
        library.propagate = False
        library.setLevel(logging.DEBUG if verbose else level)


class _JobFailed(StudyBuddyError):
    """A video that cannot be fetched (permanent, or out of attempts): the job fails, not retried."""


def _close(session: Any) -> None:
    try:
        session.close()
    except LedgerError as exc:  # the ledger ends the lease when it can; the job is not at fault
        log.warning("%s", exc)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
