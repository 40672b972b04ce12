"""Show a batch's progress: a live bar on a terminal, plain lines in logs, or only failures.

Worker threads report concurrently, so every reporter serialises its output: a line is never
split or interleaved. Reporters write to the stream they are given (stderr in the CLI), which
keeps stdout free for ``--json``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ._run_log import ErrorKind, VideoResult, VideoStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

#: How many current exits the bar names before it just counts the rest.
_SHOWN_EXITS = 3
_STYLES = {"fetched": "green", "skipped": "dim", "failed": "red", "blocked": "yellow", "pending": "dim"}


class Reporter(Protocol):
    """What ``BatchRunner`` tells the user about; every method may be called from any thread."""

    def batch_started(self, total: int, skipped: int, workers: int) -> None:
        """``total`` counts every video; the ``skipped`` ones never reach ``video_finished``."""

    def video_started(self, video_id: str, worker: int, attempt: int, exit_ip: str | None) -> None: ...

    def video_finished(self, result: VideoResult) -> None: ...

    def notice(self, message: str) -> None: ...

    def batch_finished(self, summary: Summary) -> None: ...


@dataclass(frozen=True)
class Summary:
    """What a batch achieved; ``exit_code`` is the CLI's."""

    fetched: int
    skipped: int
    failed: int
    pending: int
    failed_by_reason: dict[str, int]
    exits_used: int  # distinct exits, all videos and attempts
    wall_time: float  # seconds
    results: list[VideoResult]

    @property
    def exit_code(self) -> int:
        """0 when every video is fetched or was already; 1 when some failed or were not reached."""
        return 0 if self.failed == 0 and self.pending == 0 else 1


def summarize(results: list[VideoResult], wall_time: float) -> Summary:
    statuses = Counter(result.status for result in results)
    failed_by_reason = Counter(_reason(result) for result in results if result.status == VideoStatus.FAILED)
    exits = {ip for result in results for ip in result.exits_used}
    exits.update(result.exit_ip for result in results if result.exit_ip)
    return Summary(
        fetched=statuses[VideoStatus.FETCHED],
        skipped=statuses[VideoStatus.SKIPPED],
        failed=statuses[VideoStatus.FAILED],
        pending=statuses[VideoStatus.PENDING],
        failed_by_reason=dict(failed_by_reason.most_common()),
        exits_used=len(exits),
        wall_time=wall_time,
        results=list(results),
    )


def summary_json(summary: Summary) -> dict[str, Any]:
    """The summary for ``--json``: counts, exit code and every video's result."""
    return {
        "fetched": summary.fetched,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "pending": summary.pending,
        "failed_by_reason": summary.failed_by_reason,
        "exits_used": summary.exits_used,
        "wall_time": round(summary.wall_time, 3),
        "exit_code": summary.exit_code,
        "results": [result.to_json() for result in summary.results],
    }


def format_summary(summary: Summary) -> str:
    """One line, e.g. ``fetched 8, skipped 2, failed 1 (no_transcript 1), exits used 9, wall time 41.0 s``."""
    parts = [f"fetched {summary.fetched}", f"skipped {summary.skipped}", f"failed {summary.failed}"]
    if summary.failed_by_reason:
        parts[-1] += " (" + ", ".join(f"{reason} {n}" for reason, n in summary.failed_by_reason.items()) + ")"
    if summary.pending:
        parts.append(f"not reached {summary.pending}")
    parts += [f"exits used {summary.exits_used}", f"wall time {_duration(summary.wall_time)}"]
    return ", ".join(parts)


def format_result(result: VideoResult) -> tuple[str, str]:
    """The label ("fetched", "failed", "blocked", ...) and the one line shown for a finished video."""
    label = (
        "blocked" if result.status == VideoStatus.FAILED and result.error_kind == ErrorKind.BLOCKED else result.status
    )
    vid = result.video_id
    if result.status == VideoStatus.FETCHED:
        title = f' "{result.title}"' if result.title else ""
        details = [_plural(result.attempts, "attempt")]
        if result.timings:
            details.append(_duration(sum(result.timings.values())))
        text = f"{vid}{title} via {result.exit_ip} ({', '.join(details)})"
        if result.files:
            text += " -> " + ", ".join(result.files)
    elif label == "blocked":
        text = f"{vid} {_reason(result)} after {_plural(result.attempts, 'attempt')}"
    elif result.status == VideoStatus.FAILED:
        text = f"{vid} {_reason(result)}" + (f": {result.error}" if result.error else "")
        if result.error_kind == ErrorKind.PERMANENT:
            text += " (not retried)"
    elif result.status == VideoStatus.PENDING:
        text = f"{vid} not reached: {result.error or 'the run stopped'}"
    else:
        text = f"{vid} already fetched"
    return label, f"{label:<7} {text}"


class PlainReporter:
    """Plain lines for logs and pipes: one per finished video, notices, and the summary."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def batch_started(self, total: int, skipped: int, workers: int) -> None:
        self._line(f"batch: {_plural(total, 'video')}, {skipped} already fetched, {_plural(workers, 'worker')}")

    def video_started(self, video_id: str, worker: int, attempt: int, exit_ip: str | None) -> None:
        """Not shown: the finished line says it all, and logs stay one line per video."""

    def video_finished(self, result: VideoResult) -> None:
        self._line(format_result(result)[1])

    def notice(self, message: str) -> None:
        self._line(f"notice: {message}")

    def batch_finished(self, summary: Summary) -> None:
        self._line(f"done: {format_summary(summary)}")

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()


class QuietReporter(PlainReporter):
    """For ``-q``: only failed or unreached videos, and the summary."""

    def batch_started(self, total: int, skipped: int, workers: int) -> None:
        """Not shown in quiet mode."""

    def video_finished(self, result: VideoResult) -> None:
        if result.status in (VideoStatus.FAILED, VideoStatus.PENDING):
            super().video_finished(result)

    def notice(self, message: str) -> None:
        """Not shown in quiet mode."""


class RichReporter:
    """A live bar (done, failed, current exits) with one line per finished video printed above it.

    ``console`` is public so the CLI can route logging through it (``rich.logging.RichHandler``)
    and log lines do not tear the bar.
    """

    def __init__(self, console: Console) -> None:
        # rich is imported here, not with the module: a run without a terminal never needs it.
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self._lock = threading.Lock()
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[exits]}", markup=False),
            console=console,
            transient=True,
            redirect_stdout=False,  # stdout belongs to --json
            redirect_stderr=False,
        )
        self._task: TaskID | None = None
        self._failed = 0
        self._active: dict[str, str | None] = {}  # video id -> its current exit

    def batch_started(self, total: int, skipped: int, workers: int) -> None:
        with self._lock:
            self._print(f"{_plural(total, 'video')}, {skipped} already fetched, {_plural(workers, 'worker')}")
            self._task = self._progress.add_task("fetching", total=total, completed=skipped, failed=0, exits="")
            self._progress.start()

    def video_started(self, video_id: str, worker: int, attempt: int, exit_ip: str | None) -> None:
        with self._lock:
            self._active[video_id] = exit_ip
            self._update()

    def video_finished(self, result: VideoResult) -> None:
        label, line = format_result(result)
        with self._lock:
            self._active.pop(result.video_id, None)
            if result.status in (VideoStatus.FAILED, VideoStatus.PENDING):
                self._failed += 1
            self._print(line, style=_STYLES.get(label))
            self._update(advance=1)

    def notice(self, message: str) -> None:
        with self._lock:
            self._print(message, style="yellow")

    def batch_finished(self, summary: Summary) -> None:
        with self._lock:
            self._progress.stop()
            self._print(
                f"done: {format_summary(summary)}", style="bold green" if summary.exit_code == 0 else "bold red"
            )

    def _update(self, advance: int = 0) -> None:
        if self._task is None:
            return  # batch_started was never called; lines still print
        exits = [ip for ip in self._active.values() if ip]
        shown = ", ".join(exits[:_SHOWN_EXITS])
        if len(exits) > _SHOWN_EXITS:
            shown += f" +{len(exits) - _SHOWN_EXITS}"
        self._progress.update(self._task, advance=advance, failed=self._failed, exits=f"via {shown}" if shown else "")

    def _print(self, text: str, style: str | None = None) -> None:
        # A Text is never read as markup (titles may contain "[...]"), and styling it rather than
        # the print keeps the style off the live bar, which rich renders in the same call.
        from rich.text import Text

        self.console.print(Text(text, style=style or ""), soft_wrap=True)


def make_reporter(stream: TextIO, *, quiet: bool, force_plain: bool = False) -> Reporter:
    """Quiet if asked, the live bar on a terminal, plain lines otherwise."""
    if quiet:
        return QuietReporter(stream)
    if not force_plain and stream.isatty():
        from rich.console import Console

        return RichReporter(Console(file=stream))
    return PlainReporter(stream)


def _reason(result: VideoResult) -> str:
    return result.error_reason or result.error_kind or "unknown"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
