"""Faults and bad input where a user meets them: the CLI as a subprocess on the lab and the fake
YouTube, with the exit ledger failing, Ctrl-C pressed twice, the disk filling up, and two runs
on one output directory. Each must end with one clear line, exit status 1 (0 when nothing was
left), a run log of whole lines with its run_end, complete notes only, and a re-run that finishes."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_cli_lab import Run, run  # noqa: F401 - the fixture
from yt_study_buddy._exceptions import RunLogError
from yt_study_buddy.app._run_log import RunLog, VideoResult, VideoStatus
from yt_study_buddy.testing.fake_youtube import Behavior

pytestmark = pytest.mark.lab

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")),
    reason="a tmpfs in a mount namespace of its own needs root, unshare and nsenter",
)


def wait_until(
    condition: Callable[[], object], process: subprocess.Popen[str] | None = None, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def log_lines(output: Path) -> list[dict]:
    """Every line of the run log, each of which must be a whole JSON object."""
    raw = (output / ".yt-study-buddy" / "runs.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.split(b"\n")[:-1]]


def check_books(run: Run, ids: list[str]) -> set[str]:
    """The run log and the notes agree after a stopped run; returns the fetched ids."""
    records = log_lines(run.output)
    [start] = [r for r in records if r["event"] == "run_start"]
    [end] = [r for r in records if r["event"] == "run_end"]
    assert start["run_id"] == end["run_id"]
    fetched = {r["video_id"] for r in records if r["event"] == "video" and r["status"] == "fetched"}
    assert set(run.notes()) == fetched  # every note is recorded, every record has its note
    assert set(end["pending"]) == set(ids) - fetched
    assert not list(run.output.glob(".*.tmp")), "a half-written note was left behind"
    return fetched


def watch_requests(fake, video_id: str) -> int:
    return len([r for r in fake.served(video_id=video_id) if r.path.startswith("/watch")])


# -- the exit ledger failing mid-run ----------------------------------------------------------


def break_ledger(ledger: Path, fault: str) -> sqlite3.Connection | None:
    """Make every later use of the ledger fail; for "locked", the connection holding the lock."""
    if fault == "locked":  # held past the client's 10 s busy timeout, until the run has ended
        holder = sqlite3.connect(ledger, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        return holder
    if fault == "corrupt":
        garbage = ledger.with_name("garbage")
        garbage.write_bytes(b"not a database, just bytes " * 200)
        os.replace(garbage, ledger)
    for suffix in ("-wal", "-shm", "" if fault == "removed" else None):
        if suffix is not None:
            Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    return None


@pytest.mark.parametrize("fault", ["removed", "corrupt", "locked"])
def test_exit_ledger_failing_mid_run_stops_once_and_a_rerun_continues(run, fake_youtube, fault):
    ids = [f"ledger{fault[:3]}{n:02d}" for n in range(6)]
    ledger = run.state / "exit-ledger.sqlite3"
    fake_youtube.script(Behavior.SLOW, delay=0.5)
    process = run.popen("--parallel", "--workers", "2", *ids)
    holder = None
    try:
        run.wait_for_notes(1, process)
        holder = break_ledger(ledger, fault)
        _, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
        if holder is not None:
            holder.close()
    assert process.returncode == 1, stderr
    assert "internal" not in stderr and "Traceback" not in stderr, stderr
    stops = [line for line in stderr.splitlines() if line.startswith("notice: stopping: ")]
    assert len(stops) == 1 and f"exit ledger {ledger}" in stops[0], stderr
    fetched = check_books(run, ids)
    assert fetched and fetched != set(ids)
    assert f"not reached {len(ids) - len(fetched)}" in stderr
    fake_youtube.reset()
    if fault == "corrupt":  # never reset silently: the user moves it aside
        refused = run(*ids)
        assert refused.returncode == 1
        assert refused.stderr.splitlines()[-1].startswith(f"yt-study-buddy: error: exit ledger {ledger} is unreadable")
        ledger.rename(ledger.with_name("damaged-ledger"))
    again = run("--parallel", *ids)
    assert again.returncode == 0, again.stderr
    assert set(run.notes()) == set(ids)
    assert all(watch_requests(fake_youtube, vid) == (vid not in fetched) for vid in ids)


# -- Ctrl-C twice -----------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["as_the_batch_starts", "after_a_note", "in_the_grace_period"])
def test_ctrl_c_twice_still_writes_run_end_and_exits_1(run, fake_youtube, moment):
    ids = [f"twice{moment[:2]}{n:04d}" for n in range(6)]
    fake_youtube.script(Behavior.SLOW, delay=0.5)  # about 2 s per video
    fake_youtube.script(Behavior.SLOW, video_id=ids[1], delay=3.0)  # in flight at the second Ctrl-C
    process = run.popen("--parallel", "--workers", "2", *ids)
    try:
        if moment == "as_the_batch_starts":
            wait_until(lambda: (run.output / ".yt-study-buddy" / "runs.jsonl").exists(), process)
        else:
            run.wait_for_notes(1, process)
        process.send_signal(signal.SIGINT)
        time.sleep(1.5 if moment == "in_the_grace_period" else 0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "error: interrupted" not in stderr, stderr
    assert "stopping: videos in flight get 5 s to finish" in stderr
    if moment != "as_the_batch_starts":  # there, the batch may be over before the second press lands
        assert "quitting: videos in flight are left for the next run" in stderr
    fetched = check_books(run, ids)
    assert fetched != set(ids)
    fake_youtube.reset()
    again = run("--parallel", *ids)
    assert again.returncode == 0, again.stderr
    assert set(run.notes()) == set(ids)


# -- the disk filling up ----------------------------------------------------------------------


class SmallDisk:
    """A small tmpfs in a mount namespace of its own, held open by a sleeping process.

    Nothing is mounted where other processes would see it: the CLI enters the namespace
    (``nsenter``), the test reaches the files through ``/proc/<holder>/root``, and the tmpfs
    goes away with the holder.
    """

    def __init__(self, mountpoint: Path, size: str = "1m") -> None:
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.path = mountpoint
        self._holder = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                'mount -t tmpfs -o size="$1" tmpfs "$2" && echo mounted && exec sleep 600',
                "holder",
                size,
                str(mountpoint),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        ready, _, _ = select.select([self._holder.stdout], [], [], 10)
        assert ready and self._holder.stdout.readline() == "mounted\n", "could not mount a tmpfs"
        #: The mount point as this process sees it.
        self.view = Path(f"/proc/{self._holder.pid}/root") / mountpoint.relative_to("/")

    def command(self, *argv: str) -> list[str]:
        return ["nsenter", "--target", str(self._holder.pid), "--mount", "--", *argv]

    def fill(self) -> None:
        fd = os.open(self.view / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (b"\0" * (1 << 16), b"\0" * (1 << 12), b"\0"):
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)
        assert shutil.disk_usage(self.view).free == 0

    def free(self) -> None:
        (self.view / "filler").unlink()

    def close(self) -> None:
        self._holder.kill()
        self._holder.wait(timeout=10)
        if self._holder.stdout:
            self._holder.stdout.close()


@pytest.fixture
def small_disk(tmp_path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "small-disk")
    try:
        yield disk
    finally:
        disk.close()


@needs_root
def test_run_log_append_on_a_full_disk_leaves_no_half_line(small_disk):
    path = small_disk.view / "runs.jsonl"
    log = RunLog(path)
    log.start_run("run-1", {})
    small_disk.fill()
    before = path.read_bytes()
    big = VideoResult("fullfullful", VideoStatus.FETCHED, title="long " * 4000)  # more than the page has left
    with pytest.raises(RunLogError, match=f"cannot write the run log {path}: No space left on device"):
        log.append(big, "run-1")
    assert path.read_bytes() == before
    small_disk.free()
    log.append(big, "run-1")
    assert [r["event"] for r in RunLog.read(path)] == ["run_start", "video"]


class DiskRun(Run):
    """A ``Run`` whose output directory is the small disk, the CLI running in its namespace."""

    def __init__(self, tmp_path: Path, fake, disk: SmallDisk) -> None:
        super().__init__(tmp_path, fake)
        self.args[self.args.index("--output") + 1] = str(disk.path)
        self.output = disk.view  # where this process reads the notes and the run log
        self.disk = disk

    def argv(self, *args: str) -> list[str]:
        return self.disk.command(sys.executable, "-m", "yt_study_buddy", *args, *self.args)

    def __call__(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
        return subprocess.run(self.argv(*args), env=env, capture_output=True, text=True, timeout=120)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
        return subprocess.Popen(self.argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_root
def test_disk_filling_up_stops_the_run_clearly_and_a_rerun_completes(lab, fake_youtube, tmp_path, small_disk):
    run = DiskRun(tmp_path, fake_youtube, small_disk)
    ids = [f"diskfull{n:03d}" for n in range(6)]
    fake_youtube.script(Behavior.SLOW, delay=0.5)
    process = run.popen("--parallel", "--workers", "2", *ids)
    try:
        run.wait_for_notes(1, process)
        small_disk.fill()
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "write_failed" not in stderr, stderr
    stops = [line for line in stderr.splitlines() if line.startswith("notice: stopping: ")]
    assert len(stops) == 1 and "No space left on device" in stops[0], stderr
    records = log_lines(run.output)  # whole lines only, however far the log got
    fetched = {r["video_id"] for r in records if r["event"] == "video" and r["status"] == "fetched"}
    assert fetched and fetched != set(ids) and set(run.notes()) == fetched
    assert not list(run.output.glob(".*.tmp"))
    ends = [r for r in records if r["event"] == "run_end"]
    if ends:
        assert set(ends[0]["pending"]) == set(ids) - fetched
    else:  # the disk did not take the run_end either: said so, once
        assert f"cannot write the run log {small_disk.path}" in stderr
    small_disk.free()
    fake_youtube.reset()
    again = run("--parallel", *ids)
    assert again.returncode == 0, again.stderr
    assert set(run.notes()) == set(ids)
    assert all(watch_requests(fake_youtube, vid) == (vid not in fetched) for vid in ids)
    log_lines(run.output)


# -- two runs on one output directory ---------------------------------------------------------


def test_two_runs_on_one_output_directory_fetch_each_video_once(run, fake_youtube):
    ids = [f"tworuns{n:04d}" for n in range(6)]
    run.args += ["--cooldown-hours", "0"]  # the two runs' lookaheads hold exits too
    fake_youtube.script(Behavior.SLOW, delay=0.5)
    processes = [run.popen("--parallel", "--workers", "2", "--json", *ids) for _ in range(2)]
    try:
        outputs = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0, 0], outputs
    for vid in ids:
        assert watch_requests(fake_youtube, vid) == 1, vid
    summaries = [json.loads(stdout) for stdout, _ in outputs]
    assert sum(summary["fetched"] for summary in summaries) == len(ids)
    assert all(summary["fetched"] + summary["skipped"] == len(ids) for summary in summaries)
    records = log_lines(run.output)
    starts = [r["run_id"] for r in records if r["event"] == "run_start"]
    ends = [r["run_id"] for r in records if r["event"] == "run_end"]
    assert len(set(starts)) == 2 and sorted(starts) == sorted(ends)
    assert all(r["pending"] == [] for r in records if r["event"] == "run_end")
    fetched = [r["video_id"] for r in records if r["event"] == "video" and r["status"] == "fetched"]
    assert sorted(fetched) == sorted(ids)
    assert set(run.notes()) == set(ids)


# -- a long URL file --------------------------------------------------------------------------


def test_planning_benchmark_runs_and_reports_every_step(tmp_path):
    # Linearity itself is measured by the benchmark (benchmarks/planning.py), not asserted here.
    out = tmp_path / "planning.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.planning", "--sizes", "20", "200", "--repeat", "1", "--json", str(out)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report["ratios"]) == {"read", "done", "plan", "run", "claim"}
    assert done.stdout.splitlines()[0] == "| step | 20 lines s | 200 lines s | ratio |"


# -- claims and the run log, below the CLI ----------------------------------------------------


def test_a_claim_held_by_another_process_is_refused_and_freed_when_it_dies(tmp_path):
    from yt_study_buddy.app._run_log import VideoClaims

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from yt_study_buddy.app._run_log import VideoClaims\n"
                "claim = VideoClaims(Path(sys.argv[1])).try_claim('claimedvid1'); print('held', flush=True)\n"
                "time.sleep(60)"
            ),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "held\n"
        claims = VideoClaims(tmp_path)
        assert claims.try_claim("claimedvid1") is None
        other = claims.try_claim("anothervid1")  # other videos are free
        assert other is not None
        other.release()
        holder.kill()  # SIGKILL: no clean-up ran, the kernel dropped the lock
        holder.wait(timeout=10)
        claim = claims.try_claim("claimedvid1")
        assert claim is not None
        claim.release()
        assert not (tmp_path / "claimedvid1.lock").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()


def test_done_tracker_sees_what_another_run_appends_and_force_ignores_the_past(tmp_path):
    from yt_study_buddy.app._run_log import DoneTracker

    log = RunLog(tmp_path / "runs.jsonl")
    note = tmp_path / "old [oldvideo001].md"
    note.write_text("# old\n")
    log.append(VideoResult("oldvideo001", VideoStatus.FETCHED, files=[str(note)]), "run-1")
    tracker, forced = DoneTracker(log.path, tmp_path), DoneTracker(log.path, tmp_path, since_now=True)
    assert tracker.done() == {"oldvideo001"} and forced.done() == set()
    new = tmp_path / "new [newvideo001].md"
    new.write_text("# new\n")
    log.append(VideoResult("newvideo001", VideoStatus.FETCHED, files=[str(new)]), "run-2")  # another run, meanwhile
    for each in (tracker, forced):
        assert not each.is_done("newvideo001")
        each.refresh()
        assert each.is_done("newvideo001")
    assert not forced.is_done("oldvideo001") and tracker.is_done("oldvideo001")
