"""BatchRunner: a list of videos in, one note per video out, each video on a fresh exit.

Threads and what they own: the ``TorIPQueue`` thread makes sessions; each worker thread owns
the video it took from the work queue and the session it took from the exit queue; the
``RunLog`` and the reporter are shared and thread-safe. Every wait is bounded, and ``stop()``
(Ctrl-C, tor gone, the exit ledger or the output disk failing) lets videos in flight finish for
a short grace period, then reports the rest pending, so the run log's ``run_end`` says what a
re-run will pick up. A second Ctrl-C skips the grace period; ``run_end`` is written either way.

Each video is claimed (``VideoClaims``) before it takes an exit, and checked again against the
run log once claimed, so two runs on one output directory never fetch a video twice.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import queue
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from .._exceptions import (
    ExitsExhausted,
    ExitWaitTimeout,
    FailureKind,
    FetchFailure,
    LedgerError,
    QueueStopped,
    RunLogError,
    TorError,
)
from .._fs import write_atomic
from ..notes._files import note_stem
from ..notes._formatters import Provenance, render
from ..notes._search import NoteIndex, fts5_available
from ..tor._protocols import SessionSource
from ..tor._queue import TorIPQueue
from ..tor._session import TorSession
from ..youtube._courses import Course
from ..youtube._transcripts import Transcript
from ._course_notes import NotePlace, note_places, write_course_indexes
from ._fetcher import TorTranscriptFetcher
from ._progress import Reporter, Summary, summarize
from ._run_log import Claim, DoneTracker, ErrorKind, RunLog, VideoClaims, VideoResult, VideoStatus, default_run_id

log = logging.getLogger(__name__)

#: After stop(), videos in flight get this long to finish before they are reported pending.
STOP_GRACE = 5.0
#: How often a worker looks again at a video another run is fetching.
CLAIM_POLL = 0.5
#: Write errors every later note would hit too: the run stops instead of failing each video.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BatchOptions:
    output_dir: Path
    formats: tuple[str, ...] = ("md",)
    languages: tuple[str, ...] = ("en",)
    translate_to: str | None = None
    workers: int = 3
    max_attempts: int = 3
    force: bool = False
    lookahead: int | None = None  # default: twice the workers
    #: How long to wait for a fresh exit, also for a cooling one to free up; beyond it, fail
    #: (with the time one frees up) rather than leave the user staring at a silent batch.
    exit_wait: float = 300.0


class BatchRunner:
    """Runs one batch; ``run()`` returns the summary, ``stop()`` may come from any thread.

    After ``run()``, ``stopped_because`` is None if the batch ran to its end, else why it stopped
    (Ctrl-C, tor, the exit ledger, the disk): the CLI exits 1 then, even if nothing was left.
    """

    def __init__(self, client: SessionSource, options: BatchOptions, *, reporter: Reporter, run_log: RunLog) -> None:
        self.client = client
        self.options = options
        self.reporter = reporter
        self.run_log = run_log
        self.run_id = default_run_id()
        self.stopped_because: str | None = None
        self.summary: Summary | None = None
        self._stop = threading.Event()
        self._abort = threading.Event()  # the second Ctrl-C: do not wait for videos in flight
        self._stop_lock = threading.Lock()
        self._stop_reason = "the run stopped"
        self._exit_queue: TorIPQueue | None = None
        self._ctrl_c = 0  # counted by the signal handler, acted on by the main thread
        self._ctrl_c_seen = 0
        # Held while a result's notes are written and it is recorded; once _finished is set no
        # worker writes a note or a line, so the run log's run_end is the last word.
        self._record_lock = threading.Lock()
        self._finished = False
        self._results: dict[str, VideoResult] = {}
        self._claims = VideoClaims(run_log.path.parent / "claims")
        self._done: DoneTracker | None = None
        self._courses: tuple[Course, ...] = ()
        self._places: dict[str, tuple[NotePlace, ...]] = {}
        # Markdown notes go into the output's search index as they are written (search refreshes
        # it from the files too, so a note this misses is found later).
        self._search = NoteIndex(options.output_dir) if "md" in options.formats and fts5_available() else None

    def stop(self, reason: str = "the run was interrupted") -> bool:
        """Stop handing out videos; True for the first call, whose reason pending videos report."""
        first = self._mark_stopped(reason)
        if self._exit_queue is not None:
            self._stop_queue(timeout=0)
        return first

    def _mark_stopped(self, reason: str) -> bool:
        with self._stop_lock:
            first = not self._stop.is_set()
            if first:
                self._stop_reason = self.stopped_because = reason
            self._stop.set()
        return first

    def run(
        self, video_ids: Sequence[str], *, courses: Sequence[Course] = (), singles: Sequence[str] | None = None
    ) -> Summary:
        """Fetch ``video_ids``. A course's videos go to its folder (see `_course_notes`), whose
        ``index.md`` is written at the end, also when the run is stopped; the videos in
        ``singles`` (default: every video in no course) go to the output directory itself."""
        self._courses = tuple(courses)
        self._places = note_places(self._courses, singles)
        with self._ctrl_c_stops():
            self.summary = self._run(video_ids)
        if self._ctrl_c and self.stopped_because is None:  # pressed after the last video: still a stop
            self.stopped_because = "the run was interrupted"
        return self.summary

    def _run(self, video_ids: Sequence[str]) -> Summary:
        started = time.monotonic()
        opts = self.options
        todo = self.plan(video_ids)
        skipped = len(self._results)
        workers = max(1, min(opts.workers, len(todo)))
        self.run_log.start_run(
            self.run_id,
            {  # RunLogError here: nothing has started
                "videos": len(video_ids),
                "skipped": skipped,
                "workers": workers,
                "strategy": self.client.strategy.name,
                "formats": list(opts.formats),
                "languages": list(opts.languages),
                "translate_to": opts.translate_to,
            },
        )
        self.reporter.batch_started(total=len(video_ids), skipped=skipped, workers=workers)
        if todo:
            opts.output_dir.mkdir(parents=True, exist_ok=True)
            self._run_workers(todo, workers)
        pending = [vid for vid in todo if vid not in self._results]
        for vid in pending:
            self._results[vid] = VideoResult(
                vid, VideoStatus.PENDING, error_kind=ErrorKind.INTERRUPTED, error=f"not fetched: {self._stop_reason}"
            )
        summary = summarize([self._results[vid] for vid in video_ids], time.monotonic() - started)
        self._write_indexes()
        try:
            self.run_log.end_run(
                self.run_id, {"fetched": summary.fetched, "failed": summary.failed, "skipped": summary.skipped}, pending
            )
        except RunLogError as exc:  # the notes are written; a re-run fetches the unrecorded ones again
            self.stopped_because = self.stopped_because or str(exc)
            self.reporter.notice(str(exc))
        self.reporter.batch_finished(summary)
        return summary

    def _write_indexes(self) -> None:
        """Each course folder's index, from what this run and earlier ones did. A failure costs
        the index only (the notes are written and recorded): said, and the run exits 1."""
        if not self._courses:
            return
        assert self._done is not None
        try:
            self._done.refresh()  # what other runs on this output finished meanwhile
            write_course_indexes(self.options.output_dir, self._courses, self._results, self._done.note_files)
        except OSError as exc:
            message = f"cannot write a course index in {self.options.output_dir}: {exc.strerror or exc}"
            self.stopped_because = self.stopped_because or message
            self.reporter.notice(message)

    def plan(self, video_ids: Sequence[str]) -> list[str]:
        """The videos to fetch, in order; the done ones are recorded as skipped. Linear in both
        the list and the run log (``benchmarks/planning.py``)."""
        self._done = DoneTracker(self.run_log.path, self.options.output_dir, since_now=self.options.force)
        done = self._done.done()
        self._results = {vid: VideoResult(vid, VideoStatus.SKIPPED) for vid in video_ids if vid in done}
        return [vid for vid in video_ids if vid not in done]

    # -- Ctrl-C ------------------------------------------------------------------------------

    @contextmanager
    def _ctrl_c_stops(self) -> Iterator[None]:
        """While the batch runs, Ctrl-C only counts; the main thread stops the batch (the second
        time at once). A KeyboardInterrupt could land anywhere, also in the middle of writing
        ``run_end``; a handler that raises nothing lets the batch always finish its books.

        Only in the main thread and over Python's default handler: a program's own stays.
        """
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_ctrl_c)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        self._ctrl_c += 1  # nothing else: a handler interrupts arbitrary code, locks included

    def _handle_ctrl_c(self) -> None:
        """Act on the Ctrl-C presses counted since the last call (main thread)."""
        count = self._ctrl_c
        if count == self._ctrl_c_seen:
            return
        if self._ctrl_c_seen == 0:
            self.reporter.notice(
                f"stopping: videos in flight get {STOP_GRACE:.0f} s to finish (Ctrl-C again quits at once)"
            )
            self.stop()
        if count >= 2 and not self._abort.is_set():
            self.reporter.notice("quitting: videos in flight are left for the next run")
            self._abort.set()
        self._ctrl_c_seen = count

    def _join(self, threads: list[threading.Thread], until: float | None) -> None:
        """Wait for the workers while handling Ctrl-C: until they end, the run stops (``until`` is
        None), the deadline passes, or a second Ctrl-C."""
        while any(thread.is_alive() for thread in threads):
            try:
                self._handle_ctrl_c()
                if self._abort.is_set() or (until is None and self._stop.is_set()):
                    return
                left = 0.2 if until is None else until - time.monotonic()
                alive = [thread for thread in threads if thread.is_alive()]
                if left <= 0 or not alive:
                    return
                alive[0].join(min(0.2, left))
            except KeyboardInterrupt:  # a handler of the caller's own raised it
                self._ctrl_c += 1

    # -- workers -----------------------------------------------------------------------------

    def _run_workers(self, todo: list[str], workers: int) -> None:
        work: queue.SimpleQueue[str] = queue.SimpleQueue()
        for vid in todo:
            work.put(vid)
        waiting: list[str] = []  # videos another run is fetching: this run comes back to them
        self._exit_queue = TorIPQueue(
            self.client,
            target_size=len(todo),
            lookahead=self.options.lookahead or 2 * workers,
            max_exhausted_wait=self.options.exit_wait,
        )
        self._exit_queue.start(wait=False)

        def worker(number: int) -> None:
            while not self._stop.is_set():
                taken = self._take(work, waiting)
                if taken is None:
                    return
                vid, claim = taken
                try:
                    result = self._claimed(vid, number)
                finally:
                    claim.release()
                if result.status == VideoStatus.PENDING:
                    return
                self.reporter.video_finished(result)

        threads = [
            threading.Thread(target=worker, args=(n,), name=f"worker-{n}", daemon=True) for n in range(1, workers + 1)
        ]
        for thread in threads:
            thread.start()
        self._join(threads, until=None)
        deadline = time.monotonic() + STOP_GRACE
        self._join(threads, until=deadline)
        with self._record_lock:  # waits for a note being written; late results stay pending
            self._finished = True
        self._stop.set()
        # The allocator is idle once every video has its exit; a bounded join keeps it quiet.
        self._stop_queue(timeout=max(1.0, 0 if self._abort.is_set() else deadline - time.monotonic()))

    def _take(self, work: queue.SimpleQueue[str], waiting: list[str]) -> tuple[str, Claim] | None:
        """The next video, claimed for this run; None when none is left or the run stops.

        A video another run holds is put aside, and taken up again once the rest is done: by then
        the other run has usually finished it, and ``_claimed`` skips it.
        """
        while not self._stop.is_set():
            try:
                vid = work.get_nowait()
            except queue.Empty:
                break
            claim = self._try_claim(vid)
            if claim is not None:
                return vid, claim
            log.info("%s is being fetched by another run; coming back to it later", vid)
            with self._stop_lock:
                waiting.append(vid)
        while not self._stop.is_set():
            with self._stop_lock:
                if not waiting:
                    return None
                vid = waiting.pop(0)
            claim = self._try_claim(vid)
            if claim is not None:
                return vid, claim
            with self._stop_lock:
                waiting.append(vid)
            self._stop.wait(CLAIM_POLL)
        return None

    def _try_claim(self, vid: str) -> Claim | None:
        try:
            return self._claims.try_claim(vid)
        except OSError as exc:
            self._fault(f"cannot claim videos in {self._claims.directory}: {exc.strerror or exc}")
            return None

    def _claimed(self, vid: str, worker: int) -> VideoResult:
        """Fetch a claimed video, unless another run recorded it as done since this run planned."""
        assert self._done is not None
        self._done.refresh()
        if self._done.is_done(vid):
            result = VideoResult(vid, VideoStatus.SKIPPED)
            with self._record_lock:
                self._results[vid] = result
            return result
        try:
            return self._process(vid, worker)
        except Exception as exc:  # a bug must cost one video, not the whole batch
            log.exception("unexpected error on %s", vid)
            return self._finish(
                self._failed(
                    VideoResult(vid, VideoStatus.FAILED, worker=worker),
                    ErrorKind.INTERNAL,
                    type(exc).__name__,
                    str(exc),
                )
            )

    def _process(self, vid: str, worker: int) -> VideoResult:
        opts = self.options
        assert self._exit_queue is not None
        result = VideoResult(vid, VideoStatus.FAILED, worker=worker, started_at=_now())
        timings = {"wait_exit": 0.0, "fetch": 0.0, "write": 0.0}
        result.timings = timings
        for attempt in range(1, opts.max_attempts + 1):
            waited = time.monotonic()
            try:
                exit_ip, session, _ = self._exit_queue.get_next_connection(worker, timeout=opts.exit_wait)
            except QueueStopped:
                return _pending(result)
            except ExitsExhausted as exc:
                return self._finish(self._failed(result, ErrorKind.EXHAUSTED, "no_fresh_exit", str(exc)))
            except ExitWaitTimeout as exc:
                return self._finish(self._failed(result, ErrorKind.EXHAUSTED, "exit_wait_timeout", str(exc)))
            except LedgerError as exc:
                self._fault(str(exc))
                return _pending(result)
            except TorError as exc:
                if self._mark_stopped(f"tor became unusable ({type(exc).__name__})"):
                    self.reporter.notice(f"tor is unusable, stopping: {exc}")
                self.stop()
                return _pending(result)
            timings["wait_exit"] += time.monotonic() - waited
            result.attempts = attempt
            result.exit_ip = exit_ip
            self.reporter.video_started(vid, worker, attempt, exit_ip)
            fetch_started = time.monotonic()
            try:
                transcript = TorTranscriptFetcher(session=session).fetch_transcript(
                    vid, opts.languages, translate_to=opts.translate_to
                )
            except FetchFailure as failure:
                timings["fetch"] += time.monotonic() - fetch_started
                used = session.exits_used()
                self._close(session)
                result.exits_used.extend(ip for ip in used if ip not in result.exits_used)
                result.error_kind, result.error_reason, result.error = (
                    ErrorKind(failure.kind),
                    failure.reason,
                    str(failure),
                )
                if failure.kind is FailureKind.PERMANENT:
                    result.finished_at = _now()
                    return self._finish(result)
                log.info("%s: %s on exit %s (attempt %d)", vid, failure.reason, exit_ip, attempt)
                if attempt < opts.max_attempts:
                    self._exit_queue.add_target(1)
                continue
            except BaseException:
                self._close(session)
                raise
            timings["fetch"] += time.monotonic() - fetch_started
            used = session.exits_used()
            self._close(session)  # the transcript is in hand: the exit's cooldown starts now
            result.exits_used.extend(ip for ip in used if ip not in result.exits_used)
            result.status, result.title = VideoStatus.FETCHED, transcript.title
            result.error_kind = result.error_reason = result.error = None
            return self._finish(result, (transcript, Provenance(exit_ip, datetime.now(UTC), attempt)))
        result.finished_at = _now()
        if result.error:
            result.error = f"{result.error} (after {result.attempts} attempts)"
        return self._finish(result)

    def _finish(self, result: VideoResult, note: tuple[Transcript, Provenance] | None = None) -> VideoResult:
        """Write a fetched video's notes and record the result; pending once the run has finished.

        Notes are written under the record lock, so every note on disk has its line in the log.
        """
        with self._record_lock:
            if self._finished:
                return _pending(result)
            if note is not None:
                written = time.monotonic()
                try:
                    result.files = self._write(*note)
                except OSError as exc:
                    if exc.errno in _DISK_ERRORS:  # every later note would fail the same way
                        self._fault(f"cannot write notes in {self.options.output_dir}: {exc.strerror or exc}")
                        return _pending(result)
                    result.status = VideoStatus.FAILED
                    self._failed(result, ErrorKind.OUTPUT, "write_failed", f"cannot write the note: {exc}")
                else:
                    result.timings["write"] = time.monotonic() - written
                    result.finished_at = _now()
            self._results[result.video_id] = result
            try:
                self.run_log.append(result, self.run_id)
            except RunLogError as exc:  # the note is there; a re-run fetches it again
                self._fault(str(exc))
        return result

    def _close(self, session: TorSession) -> None:
        """End a session (its exit starts cooling); a failing ledger stops the run, not the video."""
        try:
            session.close()
        except LedgerError as exc:
            self._fault(str(exc))

    def _stop_queue(self, timeout: float) -> None:
        assert self._exit_queue is not None
        try:
            self._exit_queue.stop(timeout=timeout)
        except LedgerError as exc:  # ending the leases of unused exits
            self._announce(str(exc))

    def _fault(self, message: str) -> None:
        """Something every later video would hit too (the exit ledger, the disk): stop once.

        Said before the unused exits are handed back: with a locked ledger that takes a while.
        """
        self._announce(message)
        self.stop()

    def _announce(self, message: str) -> None:
        if self._mark_stopped(message):
            self.reporter.notice(f"stopping: {message}")

    @staticmethod
    def _failed(result: VideoResult, kind: ErrorKind, reason: str, message: str) -> VideoResult:
        result.error_kind, result.error_reason, result.error = kind, reason, message
        result.finished_at = _now()
        return result

    def _write(self, transcript: Transcript, provenance: Provenance) -> list[str]:
        """The video's notes, one per format in each of its places: the output directory for a
        video given on its own, the course folder for each course it belongs to."""
        paths = []
        for place in self._places.get(transcript.video_id, (None,)):
            if place is None:
                directory, stem = self.options.output_dir, note_stem(transcript.title, transcript.video_id)
                where = dataclasses.replace(provenance, course=None)
            else:
                directory = self.options.output_dir / place.folder
                stem = place.stem(transcript.title, transcript.video_id)
                where = dataclasses.replace(provenance, course=place.context)
                directory.mkdir(parents=True, exist_ok=True)
            for fmt in self.options.formats:
                path = directory / f"{stem}.{fmt}"
                text = render(transcript, fmt, provenance=where)
                write_atomic(path, text)
                paths.append(str(path))
                if fmt == "md":
                    self._index(path, text)
        return paths

    def _index(self, note: Path, markdown: str) -> None:
        """Add a note to the search index; a failure costs the index a note, never the fetch."""
        if self._search is None:
            return
        try:
            self._search.add(note, markdown)
        except Exception as exc:  # the note is written: whatever the index does, the video is done
            log.warning("search index: %s not indexed (%s); search adds it later", note.name, exc)


def _pending(result: VideoResult) -> VideoResult:
    result.status = VideoStatus.PENDING
    return result
