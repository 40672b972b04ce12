"""BatchRunner: a list of videos in, one note per video out, each video on a fresh exit.

Threads and what they own: the ``TorIPQueue`` thread makes sessions; each worker thread owns
the video it took from the work queue and the session it took from the exit queue; the
``RunLog`` and the reporter are shared and thread-safe. Every wait is bounded, and ``stop()``
(Ctrl-C, or tor gone) lets videos in flight finish for a short grace period, then reports the rest
pending, so the run log's ``run_end`` says what a re-run will pick up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._exceptions import ExitsExhausted, TorError
from ..youtube._failures import FailureKind, FetchFailure
from ..notes._formatters import Provenance, render
from ..notes._files import note_stem, write_atomic
from ._progress import Reporter, Summary, summarize
from ..tor._client import RotatingTorClient
from ._run_log import RunLog, VideoResult, default_run_id, done_video_ids
from ..tor._queue import QueueStopped, TorIPQueue
from ._fetcher import TorTranscriptFetcher
from ..youtube._transcripts import Transcript

log = logging.getLogger(__name__)

#: After stop(), videos in flight get this long to finish before they are reported pending.
STOP_GRACE = 5.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    """Runs one batch; ``run()`` returns the summary, ``stop()`` may come from any thread."""

    def __init__(self, client: RotatingTorClient, options: BatchOptions, *,
                 reporter: Reporter, run_log: RunLog) -> None:
        self.client = client
        self.options = options
        self.reporter = reporter
        self.run_log = run_log
        self.run_id = default_run_id()
        self._stop = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_reason = "the run stopped"
        self._exit_queue: TorIPQueue | None = None

    def stop(self, reason: str = "the run was interrupted") -> bool:
        """Stop handing out videos; True for the first call, whose reason pending videos report."""
        with self._stop_lock:
            first = not self._stop.is_set()
            if first:
                self._stop_reason = reason
            self._stop.set()
        if self._exit_queue is not None:
            self._exit_queue.stop(timeout=0)
        return first

    def run(self, video_ids: Sequence[str]) -> Summary:
        started = time.monotonic()
        opts = self.options
        done = set() if opts.force else done_video_ids(self.run_log.path, opts.output_dir)
        results: dict[str, VideoResult] = {
            vid: VideoResult(vid, "skipped") for vid in video_ids if vid in done
        }
        todo = [vid for vid in video_ids if vid not in done]
        workers = max(1, min(opts.workers, len(todo)))
        self.reporter.batch_started(total=len(video_ids), skipped=len(results), workers=workers)
        self.run_log.start_run(self.run_id, {
            "videos": len(video_ids), "skipped": len(results), "workers": workers,
            "strategy": self.client.strategy.name, "formats": list(opts.formats),
            "languages": list(opts.languages), "translate_to": opts.translate_to,
        })
        if todo:
            opts.output_dir.mkdir(parents=True, exist_ok=True)
            self._run_workers(todo, workers, results)
        pending = [vid for vid in todo if vid not in results]
        for vid in pending:
            results[vid] = VideoResult(vid, "pending", error_kind="interrupted",
                                       error=f"not fetched: {self._stop_reason}")
        ordered = [results[vid] for vid in video_ids]
        summary = summarize(ordered, time.monotonic() - started)
        self.run_log.end_run(self.run_id, {"fetched": summary.fetched, "failed": summary.failed,
                                           "skipped": summary.skipped}, pending)
        self.reporter.batch_finished(summary)
        return summary

    def _run_workers(self, todo: list[str], workers: int, results: dict[str, VideoResult]) -> None:
        work: queue.SimpleQueue[str] = queue.SimpleQueue()
        for vid in todo:
            work.put(vid)
        self._exit_queue = TorIPQueue(self.client, target_size=len(todo),
                                      lookahead=self.options.lookahead or 2 * workers,
                                      max_exhausted_wait=self.options.exit_wait)
        self._exit_queue.start(wait=False)
        lock = threading.Lock()
        finished = False  # set when the grace period is over: late results are not recorded

        def worker(number: int) -> None:
            while not self._stop.is_set():
                try:
                    vid = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    result = self._process(vid, number)
                except Exception as exc:  # a bug must cost one video, not the whole batch
                    log.exception("unexpected error on %s", vid)
                    result = self._failed(VideoResult(vid, "failed", worker=number), "internal",
                                          type(exc).__name__, str(exc))
                if result.status == "pending":
                    return
                with lock:
                    if finished:
                        return
                    results[vid] = result
                    self.run_log.append(result, self.run_id)
                self.reporter.video_finished(result)

        threads = [threading.Thread(target=worker, args=(n,), name=f"worker-{n}", daemon=True)
                   for n in range(1, workers + 1)]
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads) and not self._stop.is_set():
                for thread in threads:
                    thread.join(0.2)
        except KeyboardInterrupt:
            self.reporter.notice(f"stopping: videos in flight get {STOP_GRACE:.0f} s to finish "
                                 "(Ctrl-C again quits at once)")
            self.stop()
        deadline = time.monotonic() + STOP_GRACE
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with lock:
            finished = True
        self._stop.set()
        # The allocator is idle once every video has its exit; a bounded join keeps it quiet.
        self._exit_queue.stop(timeout=max(1.0, deadline - time.monotonic()))

    def _process(self, vid: str, worker: int) -> VideoResult:
        opts = self.options
        assert self._exit_queue is not None
        result = VideoResult(vid, "failed", worker=worker, started_at=_now())
        timings = {"wait_exit": 0.0, "fetch": 0.0, "write": 0.0}
        result.timings = timings
        for attempt in range(1, opts.max_attempts + 1):
            waited = time.monotonic()
            try:
                exit_ip, session, _ = self._exit_queue.get_next_connection(worker, timeout=opts.exit_wait)
            except QueueStopped:
                result.status = "pending"
                return result
            except ExitsExhausted as exc:
                return self._failed(result, "exhausted", "no_fresh_exit", str(exc))
            except TimeoutError as exc:
                return self._failed(result, "exhausted", "exit_wait_timeout", str(exc))
            except TorError as exc:
                if self.stop(f"tor became unusable ({type(exc).__name__})"):
                    self.reporter.notice(f"tor is unusable, stopping: {exc}")
                result.status = "pending"
                return result
            timings["wait_exit"] += time.monotonic() - waited
            result.attempts = attempt
            result.exit_ip = exit_ip
            self.reporter.video_started(vid, worker, attempt, exit_ip)
            fetch_started = time.monotonic()
            try:
                transcript = TorTranscriptFetcher(session=session).fetch_transcript(
                    vid, opts.languages, translate_to=opts.translate_to)
            except FetchFailure as failure:
                timings["fetch"] += time.monotonic() - fetch_started
                used = session.exits_used()
                session.close()
                result.exits_used.extend(ip for ip in used if ip not in result.exits_used)
                result.error_kind, result.error_reason, result.error = (
                    failure.kind.value, failure.reason, str(failure))
                if failure.kind is FailureKind.PERMANENT:
                    result.finished_at = _now()
                    return result
                log.info("%s: %s on exit %s (attempt %d)", vid, failure.reason, exit_ip, attempt)
                if attempt < opts.max_attempts:
                    self._exit_queue.add_target(1)
                continue
            except BaseException:
                session.close()
                raise
            timings["fetch"] += time.monotonic() - fetch_started
            used = session.exits_used()
            written = time.monotonic()
            try:
                result.files = self._write(transcript, Provenance(exit_ip, datetime.now(timezone.utc), attempt))
            except OSError as exc:
                return self._failed(result, "output", "write_failed", f"cannot write the note: {exc}")
            finally:
                session.close()
            timings["write"] = time.monotonic() - written
            result.exits_used.extend(ip for ip in used if ip not in result.exits_used)
            result.status, result.title = "fetched", transcript.title
            result.error_kind = result.error_reason = result.error = None
            result.finished_at = _now()
            return result
        result.finished_at = _now()
        if result.error:
            result.error = f"{result.error} (after {result.attempts} attempts)"
        return result

    @staticmethod
    def _failed(result: VideoResult, kind: str, reason: str, message: str) -> VideoResult:
        result.error_kind, result.error_reason, result.error = kind, reason, message
        result.finished_at = _now()
        return result

    def _write(self, transcript: Transcript, provenance: Provenance) -> list[str]:
        stem = note_stem(transcript.title, transcript.video_id)
        paths = []
        for fmt in self.options.formats:
            path = self.options.output_dir / f"{stem}.{fmt}"
            write_atomic(path, render(transcript, fmt, provenance=provenance))
            paths.append(str(path))
        return paths
