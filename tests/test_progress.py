from __future__ import annotations

import io
import json
import threading

import pytest
from rich.console import Console

from yt_study_buddy.app._progress import (
    PlainReporter,
    QuietReporter,
    Reporter,
    RichReporter,
    make_reporter,
    summarize,
    summary_json,
)
from yt_study_buddy.app._run_log import ErrorKind, VideoResult, VideoStatus

FETCHED = VideoResult(
    "dQw4w9WgXcQ",
    VideoStatus.FETCHED,
    worker=1,
    exit_ip="127.0.0.12",
    exits_used=["127.0.0.12"],
    attempts=1,
    title="Never [Gonna] Give",
    files=["notes/Never [Gonna] Give [dQw4w9WgXcQ].md"],
    timings={"wait_exit": 0.5, "fetch": 1.5, "write": 0.1},
)
PERMANENT = VideoResult(
    "abcdefghijk",
    VideoStatus.FAILED,
    exit_ip="127.0.0.13",
    exits_used=["127.0.0.13"],
    attempts=1,
    error_kind=ErrorKind.PERMANENT,
    error_reason="no_transcript",
    error="No transcripts were found for en",
)
BLOCKED = VideoResult(
    "xyzxyzxyzxy",
    VideoStatus.FAILED,
    exit_ip="127.0.0.16",
    exits_used=["127.0.0.14", "127.0.0.15", "127.0.0.16"],
    attempts=3,
    error_kind=ErrorKind.BLOCKED,
    error_reason="ip_blocked",
    error="YouTube blocked this exit (after 3 attempts)",
)
RETRIED = VideoResult(
    "retryretryr",
    VideoStatus.FAILED,
    exit_ip="127.0.0.12",
    exits_used=["127.0.0.12", "127.0.0.17"],
    attempts=2,
    error_kind=ErrorKind.RETRYABLE,
    error_reason="timeout",
    error="timed out (after 2 attempts)",
)
PENDING = VideoResult(
    "pendingpend", VideoStatus.PENDING, error_kind=ErrorKind.INTERRUPTED, error="not fetched: the run stopped"
)
SKIPPED = VideoResult("skippedskip", VideoStatus.SKIPPED)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(reporter_type: type[PlainReporter], *results: VideoResult) -> list[str]:
    stream = io.StringIO()
    reporter = reporter_type(stream)
    for result in results:
        reporter.video_finished(result)
    return stream.getvalue().splitlines()


def test_plain_lines_for_each_kind_of_result() -> None:
    assert _lines(PlainReporter, FETCHED, PERMANENT, BLOCKED, RETRIED, PENDING, SKIPPED) == [
        'fetched dQw4w9WgXcQ "Never [Gonna] Give" via 127.0.0.12 (1 attempt, 2.1 s)'
        " -> notes/Never [Gonna] Give [dQw4w9WgXcQ].md",
        "failed  abcdefghijk no_transcript: No transcripts were found for en (not retried)",
        "blocked xyzxyzxyzxy ip_blocked after 3 attempts",
        "failed  retryretryr timeout: timed out (after 2 attempts)",
        "pending pendingpend not reached: not fetched: the run stopped",
        "skipped skippedskip already fetched",
    ]


def test_plain_batch_lines_notice_and_summary() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter.batch_started(total=4, skipped=1, workers=2)
    reporter.video_started("dQw4w9WgXcQ", 1, 1, "127.0.0.12")
    reporter.notice("all exits cooling down; the first frees up at 21:04 UTC")
    reporter.batch_finished(summarize([FETCHED, SKIPPED, PERMANENT, BLOCKED], 75.2))
    assert stream.getvalue().splitlines() == [
        "batch: 4 videos, 1 already fetched, 2 workers",
        "notice: all exits cooling down; the first frees up at 21:04 UTC",
        "done: fetched 1, skipped 1, failed 2 (no_transcript 1, ip_blocked 1), exits used 5, wall time 1 min 15 s",
    ]


def test_quiet_shows_only_failures_and_the_summary() -> None:
    stream = io.StringIO()
    reporter = QuietReporter(stream)
    reporter.batch_started(total=3, skipped=0, workers=2)
    reporter.notice("stopping")
    for result in (FETCHED, PERMANENT, PENDING):
        reporter.video_finished(result)
    reporter.batch_finished(summarize([FETCHED, PERMANENT, PENDING], 3.0))
    assert stream.getvalue().splitlines() == [
        "failed  abcdefghijk no_transcript: No transcripts were found for en (not retried)",
        "pending pendingpend not reached: not fetched: the run stopped",
        "done: fetched 1, skipped 0, failed 1 (no_transcript 1), not reached 1, exits used 2, wall time 3.0 s",
    ]


def test_summary_counts_reasons_and_distinct_exits() -> None:
    summary = summarize([FETCHED, SKIPPED, PERMANENT, BLOCKED, RETRIED, PENDING], 12.5)
    assert (summary.fetched, summary.skipped, summary.failed, summary.pending) == (1, 1, 3, 1)
    assert summary.failed_by_reason == {"no_transcript": 1, "ip_blocked": 1, "timeout": 1}
    assert summary.exits_used == 6  # 127.0.0.12 ... 127.0.0.17, 127.0.0.12 counted once
    assert summary.wall_time == 12.5
    assert summary.exit_code == 1


@pytest.mark.parametrize(
    ("results", "code"),
    [
        ([], 0),
        ([FETCHED, SKIPPED], 0),
        ([SKIPPED], 0),
        ([FETCHED, PERMANENT], 1),
        ([FETCHED, PENDING], 1),
    ],
)
def test_exit_code(results: list[VideoResult], code: int) -> None:
    assert summarize(results, 1.0).exit_code == code


def test_summary_json_is_serialisable_and_complete() -> None:
    data = summary_json(summarize([FETCHED, BLOCKED], 2.0))
    assert json.loads(json.dumps(data)) == data
    assert data["exit_code"] == 1 and data["fetched"] == 1 and data["failed_by_reason"] == {"ip_blocked": 1}
    assert [r["video_id"] for r in data["results"]] == ["dQw4w9WgXcQ", "xyzxyzxyzxy"]
    assert data["results"][1]["exits_used"] == BLOCKED.exits_used


@pytest.mark.parametrize("reporter_type", [PlainReporter, QuietReporter])
def test_concurrent_reports_give_whole_lines(reporter_type: type[PlainReporter]) -> None:
    stream = io.StringIO()
    reporter = reporter_type(stream)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(50):
                vid = f"w{worker:02d}n{n:02d}xxxx"
                reporter.video_started(vid, worker, 1, "127.0.0.1")
                reporter.video_finished(VideoResult(vid, VideoStatus.FAILED, error_reason="timeout", error="x" * 300))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a worker never finished"

    assert errors == []
    expected = {f"failed  w{w:02d}n{n:02d}xxxx timeout: {'x' * 300}" for w in range(16) for n in range(50)}
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(expected) and set(lines) == expected


def _rich() -> tuple[RichReporter, io.StringIO]:
    out = io.StringIO()
    return RichReporter(Console(file=out, force_terminal=True, width=100)), out


def test_rich_reporter_shows_videos_and_summary() -> None:
    reporter, out = _rich()
    reporter.batch_started(total=3, skipped=1, workers=2)
    reporter.video_started("dQw4w9WgXcQ", 1, 1, "127.0.0.12")
    reporter.video_started("xyzxyzxyzxy", 2, 3, "127.0.0.16")
    reporter.notice("all exits cooling down")
    reporter.video_finished(FETCHED)
    reporter.video_finished(BLOCKED)
    reporter.batch_finished(summarize([FETCHED, SKIPPED, BLOCKED], 4.0))

    text = out.getvalue()
    assert "fetched dQw4w9WgXcQ" in text and "[Gonna]" in text  # no markup eaten
    assert "blocked xyzxyzxyzxy ip_blocked after 3 attempts" in text
    assert "all exits cooling down" in text
    assert "done: fetched 1, skipped 1, failed 1 (ip_blocked 1), exits used 4, wall time 4.0 s" in text
    assert not reporter._progress.live.is_started


def test_a_distributed_workers_bar_counts_the_whole_queue() -> None:
    reporter, out = _rich()
    reporter.batch_started(total=10, skipped=4, workers=3)
    reporter.video_started("dQw4w9WgXcQ", 0, 1, "127.0.0.12")
    reporter.video_started("xyzxyzxyzxy", 0, 1, "127.0.0.16")
    reporter.video_requeued("xyzxyzxyzxy", "ip_blocked on exit 127.0.0.16 (attempt 1), for a fresh exit")
    assert reporter._active == {"dQw4w9WgXcQ": "127.0.0.12"}  # its exit is no longer in use
    reporter.queue_progress(done=7, failed=1, total=12)  # other workers finished some; more were enqueued
    [task] = reporter._progress.tasks
    assert (task.completed, task.total, task.fields["failed"]) == (8, 12, 1)
    assert "queued  xyzxyzxyzxy ip_blocked on exit 127.0.0.16 (attempt 1), for a fresh exit" in out.getvalue()
    reporter.batch_finished(summarize([], 1.0))


def test_plain_lines_say_when_a_video_goes_back_to_the_queue() -> None:
    plain, quiet = io.StringIO(), io.StringIO()
    for reporter in (PlainReporter(plain), QuietReporter(quiet)):
        reporter.queue_progress(done=1, failed=0, total=2)
        reporter.video_requeued("xyzxyzxyzxy", "no fresh exit; not before 12:00:00 UTC")
    assert plain.getvalue() == "queued  xyzxyzxyzxy no fresh exit; not before 12:00:00 UTC\n"
    assert quiet.getvalue() == ""


def test_rich_reporter_survives_concurrent_reports() -> None:
    reporter, out = _rich()
    reporter.batch_started(total=200, skipped=0, workers=8)

    def work(worker: int) -> None:
        for n in range(25):
            vid = f"w{worker}n{n:02d}xxxxx"
            reporter.video_started(vid, worker, 1, f"127.0.0.{worker}")
            reporter.video_finished(VideoResult(vid, VideoStatus.FETCHED, exit_ip=f"127.0.0.{worker}", attempts=1))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a worker never finished"
    reporter.batch_finished(summarize([], 1.0))

    text = out.getvalue()
    assert all(f"fetched w{w}n{n:02d}xxxxx" in text for w in range(8) for n in range(25))
    assert reporter._progress.tasks[0].completed == 200


def test_make_reporter_picks_by_stream_and_flags() -> None:
    assert type(make_reporter(io.StringIO(), quiet=False)) is PlainReporter
    assert type(make_reporter(_Tty(), quiet=True)) is QuietReporter
    assert type(make_reporter(_Tty(), quiet=False, force_plain=True)) is PlainReporter
    rich = make_reporter(_Tty(), quiet=False)
    assert isinstance(rich, RichReporter) and rich.console.is_terminal


def test_summary_without_batch_started() -> None:
    """Nothing to do (every video skipped) may still end the batch: all reporters print the summary."""
    rich, rich_out = _rich()
    plain_out, quiet_out = io.StringIO(), io.StringIO()
    reporters: list[tuple[Reporter, io.StringIO]] = [
        (PlainReporter(plain_out), plain_out),
        (QuietReporter(quiet_out), quiet_out),
        (rich, rich_out),
    ]
    for reporter, out in reporters:
        reporter.batch_finished(summarize([SKIPPED], 0.0))
        assert "done: fetched 0, skipped 1, failed 0, exits used 0, wall time 0.0 s" in out.getvalue()
