from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from yt_study_buddy.app._run_log import ErrorKind, RunLog, VideoResult, VideoStatus, default_run_id, done_video_ids

# Big enough that a non-atomic append would visibly interleave.
_PAD = "x" * 5000


def _fetched(video_id: str, *files: str) -> VideoResult:
    return VideoResult(
        video_id,
        VideoStatus.FETCHED,
        exit_ip="10.0.0.1",
        exits_used=["10.0.0.1"],
        attempts=1,
        title="T",
        files=list(files),
    )


def _assert_whole_json_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def test_records_round_trip_with_run_start_and_end(tmp_path: Path) -> None:
    path = tmp_path / "out" / ".yt-study-buddy" / "runs.jsonl"
    run_log = RunLog(path)
    result = VideoResult(
        "dQw4w9WgXcQ",
        VideoStatus.FAILED,
        worker=2,
        exit_ip="10.0.0.2",
        exits_used=["10.0.0.2"],
        attempts=1,
        error_kind=ErrorKind.PERMANENT,
        error_reason="no_transcript",
        error="none",
        timings={"fetch": 1.5},
    )

    run_log.start_run("r1", {"workers": 4})
    run_log.append(result, "r1")
    run_log.end_run("r1", {"failed": 1}, ["abcdefghijk"])

    start, video, end = RunLog.read(path)
    assert start["event"] == "run_start" and start["run_id"] == "r1" and start["settings"] == {"workers": 4}
    assert video == {"event": "video", "run_id": "r1", **result.to_json()}
    assert video["timings"] == {"fetch": 1.5} and video["exits_used"] == ["10.0.0.2"]
    assert end["event"] == "run_end" and end["summary"] == {"failed": 1} and end["pending"] == ["abcdefghijk"]
    assert len(_assert_whole_json_lines(path)) == 3


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown video status"):
        VideoResult("dQw4w9WgXcQ", "done")  # type: ignore[arg-type]


def test_titles_with_newlines_and_lone_surrogates_stay_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    result = VideoResult("dQw4w9WgXcQ", VideoStatus.FETCHED, title="two\nlines \u2028 \udc80 Ünïcode")
    RunLog(path).append(result, "r")
    assert len(path.read_bytes().splitlines()) == 1
    assert RunLog.read(path)[0]["title"] == result.title


def test_read_missing_file_is_empty(tmp_path: Path) -> None:
    assert RunLog.read(tmp_path / "nope.jsonl") == []


def test_read_skips_torn_last_line_and_garbage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "runs.jsonl"
    RunLog(path).append(_fetched("aaaaaaaaaaa"), "r")
    with path.open("ab") as file:
        file.write(b"not json\n[1, 2]\n\xff\xfe\n\n")
    RunLog(path).append(_fetched("bbbbbbbbbbb"), "r")
    with path.open("ab") as file:
        file.write(b'{"event": "video", "video_id": "ccccccccccc", "sta')  # crash mid-write

    with caplog.at_level(logging.WARNING, logger="yt_study_buddy.app._run_log"):
        records = RunLog.read(path)

    assert [r["video_id"] for r in records] == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    warned = {int(m) for m in re.findall(r"line (\d+)", caplog.text)}
    assert warned == {2, 3, 4, 7}


def test_append_after_a_torn_line_does_not_glue_onto_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    RunLog(path).append(_fetched("aaaaaaaaaaa"), "r1")
    with path.open("ab") as file:
        file.write(b'{"event": "video", "vid')  # the previous run died here

    RunLog(path).append(_fetched("bbbbbbbbbbb"), "r2")

    assert [r["video_id"] for r in RunLog.read(path)] == ["aaaaaaaaaaa", "bbbbbbbbbbb"]


def test_concurrent_appends_from_threads_are_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    run_log = RunLog(path)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(25):
                run_log.append(
                    VideoResult(f"t{worker:02d}n{n:02d}", VideoStatus.FAILED, worker=worker, error=_PAD), "r"
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a worker never finished"

    assert errors == []
    records = _assert_whole_json_lines(path)
    assert sorted(r["video_id"] for r in records) == sorted(f"t{w:02d}n{n:02d}" for w in range(8) for n in range(25))


_WRITER = """
import sys
from pathlib import Path
from yt_study_buddy.app._run_log import RunLog, VideoResult
run_log = RunLog(Path(sys.argv[1]))
for n in range(100):
    run_log.append(VideoResult(f"{sys.argv[2]}{n:03d}", "failed", error=sys.argv[3]), sys.argv[2])
"""


def test_concurrent_appends_from_processes_are_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name, _PAD]) for name in ("p", "q")]
    for proc in procs:
        assert proc.wait(timeout=60) == 0

    records = _assert_whole_json_lines(path)
    assert sorted(r["video_id"] for r in records) == sorted(f"{p}{n:03d}" for p in "pq" for n in range(100))
    assert all(r["error"] == _PAD for r in records)


def test_done_video_ids_needs_latest_fetched_record_and_existing_notes(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    for name in (
        "A [aaaaaaaaaaa].md",
        "A [aaaaaaaaaaa].txt",
        "B [bbbbbbbbbbb].md",
        "D [ddddddddddd].md",
        "E [eeeeeeeeeee].md",
    ):
        (out / name).write_text("note")
    path = out / ".yt-study-buddy" / "runs.jsonl"
    run_log = RunLog(path)
    failed = VideoResult("bbbbbbbbbbb", VideoStatus.FAILED, error_kind=ErrorKind.BLOCKED, error_reason="ip_blocked")

    run_log.append(_fetched("aaaaaaaaaaa", "notes/A [aaaaaaaaaaa].md", "notes/A [aaaaaaaaaaa].txt"), "r1")
    run_log.append(_fetched("bbbbbbbbbbb", "notes/B [bbbbbbbbbbb].md"), "r1")
    run_log.append(failed, "r2")  # a later failure (e.g. --force) wins: retry it
    run_log.append(failed, "r1")
    run_log.append(_fetched("ccccccccccc", "notes/C [ccccccccccc].md"), "r1")  # note deleted since
    run_log.append(VideoResult("ddddddddddd", VideoStatus.FAILED, error_reason="timeout"), "r1")
    run_log.append(_fetched("ddddddddddd", str(out / "D [ddddddddddd].md")), "r2")  # failed, then fetched
    run_log.append(VideoResult("ddddddddddd", VideoStatus.SKIPPED), "r3")  # a skip says nothing new
    run_log.append(_fetched("eeeeeeeeeee"), "r1")  # no files recorded: cannot verify

    assert done_video_ids(path, out) == {"aaaaaaaaaaa", "ddddddddddd"}

    (out / "A [aaaaaaaaaaa].txt").unlink()  # one of its notes is gone: refetch
    assert done_video_ids(path, out) == {"ddddddddddd"}


def test_done_video_ids_without_a_log_is_empty(tmp_path: Path) -> None:
    assert done_video_ids(tmp_path / "runs.jsonl", tmp_path) == set()


def test_default_run_id_is_sortable_and_unique() -> None:
    ids = {default_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", run_id) for run_id in ids)
