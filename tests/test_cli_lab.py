"""The CLI end to end on the private Tor network and the fake YouTube: every usage and failure of
the CLI issue, as a user runs it (a real subprocess: exit codes, stdin, signals, stdout vs stderr)."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import LAB_PASSWORD
from tests.test_cli import run_cli
from yt_study_buddy.app._run_log import RunLog
from yt_study_buddy.notes import read_front_matter
from yt_study_buddy.testing.fake_youtube import Behavior
from yt_study_buddy.testing.fake_youtube._pages import FakeTrack, FakeVideo, sample_videos
from yt_study_buddy.testing.network import TorLab
from yt_study_buddy.tor._ledger import ExitLedger
from yt_study_buddy.youtube import Snippet

pytestmark = pytest.mark.lab


class Run:
    """One test's output and state directories, and the options that point the CLI at the lab."""

    def __init__(
        self, tmp_path: Path, fake, *, control: int = 9051, socks: int = 9050, password: str | None = LAB_PASSWORD
    ) -> None:
        self.output = tmp_path / "notes"
        self.state = tmp_path / "state"
        self.fake = fake
        self.args = [
            "--tor-control",
            f"127.0.0.1:{control}",
            "--tor-socks",
            f"127.0.0.1:{socks}",
            "--ca-bundle",
            str(fake.ca_path),
            "--state-dir",
            str(self.state),
            "--output",
            str(self.output),
            "--no-launch-tor",
            *(["--tor-password", password] if password else []),
        ]

    def __call__(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, *self.args, **kwargs)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
        return subprocess.Popen(
            [sys.executable, "-m", "yt_study_buddy", *args, *self.args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def notes(self, suffix: str = ".md") -> dict[str, Path]:
        """Video id -> note file; names end in " [<id>]<suffix>"."""
        return {path.stem.rsplit("[", 1)[1].rstrip("]"): path for path in self.output.glob(f"*{suffix}")}

    def records(self, event: str) -> list[dict]:
        return [r for r in RunLog.read(self.output / ".yt-study-buddy" / "runs.jsonl") if r["event"] == event]

    def wait_for_notes(self, count: int, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.notes()) < count:
            assert process.poll() is None, process.communicate(timeout=10)
            assert time.monotonic() < deadline, "no note appeared"
            time.sleep(0.1)


@pytest.fixture
def run(lab, fake_youtube, tmp_path) -> Run:
    return Run(tmp_path, fake_youtube)


def exits_seen(fake, video_id: str) -> set[str]:
    return {request.client_ip for request in fake.served(video_id=video_id)}


def test_one_video_sequential_note_and_run_log(run, lab, fake_youtube):
    done = run("https://youtube.com/watch?v=abcdefghijk")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "refused the control password" not in done.stderr
    assert "rotation: isolate (a tor shared with others)" in done.stderr  # the lab's tor is not ours
    video = fake_youtube.video("abcdefghijk")
    [exit_ip] = exits_seen(fake_youtube, "abcdefghijk")
    note = run.notes()["abcdefghijk"]
    assert note.name == f"{video.title.replace(':', ' -')} [abcdefghijk].md"
    fields, text = read_front_matter(note.read_text()) or ({}, "")
    assert fields["title"] == video.title and fields["video_id"] == "abcdefghijk" and fields["chapters"] == []
    assert text.startswith(f"\n# {video.title}\n")  # after the front matter (tests/test_formatters.py)
    assert (
        f"- **Channel:** {video.channel}\n" in text
        and "- **Video:** <https://www.youtube.com/watch?v=abcdefghijk>" in text
    )
    assert "- **Language:** English (en), manual\n" in text and f"via Tor exit {exit_ip}\n" in text
    stamps = re.findall(
        r"^\[(\d\d):(\d\d)\]\(https://www\.youtube\.com/watch\?v=abcdefghijk&t=(\d+)s\) \S", text, re.M
    )  # paragraphs, each linking to its moment of the video
    assert len(stamps) >= 2 and all(int(m) * 60 + int(s) == int(t) for m, s, t in stamps)
    [start] = run.records("run_start")
    assert start["settings"]["workers"] == 1
    [record] = run.records("video")
    assert record["video_id"] == "abcdefghijk" and record["status"] == "fetched" and record["worker"] == 1
    assert record["exit_ip"] == exit_ip and record["exits_used"] == [exit_ip] and record["attempts"] == 1
    assert set(record["timings"]) == {"wait_exit", "fetch", "write"} and record["error_reason"] is None
    assert record["started_at"] <= record["finished_at"]
    assert run.records("run_end")[0]["pending"] == []
    assert f'fetched abcdefghijk "{video.title}" via {exit_ip} (1 attempt' in done.stderr
    assert "done: fetched 1, skipped 0, failed 0, exits used 1, wall time" in done.stderr


def test_nine_videos_in_parallel_on_nine_distinct_exits(run, fake_youtube, tmp_path):
    ids = [video.video_id for video in sample_videos(9, seed="cli-nine")]
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"https://www.youtube.com/watch?v={vid}\n" for vid in ids))
    done = run("--parallel", "--workers", "3", "--file", str(urls), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # stdout holds the JSON summary and nothing else
    assert (summary["fetched"], summary["failed"], summary["exit_code"], summary["exits_used"]) == (9, 0, 0, 9)
    results = {result["video_id"]: result for result in summary["results"]}
    assert list(results) == ids and all(result["status"] == "fetched" for result in results.values())
    for vid in ids:  # the fake YouTube saw each video from exactly the exit the run reports
        assert exits_seen(fake_youtube, vid) == {results[vid]["exit_ip"]}
    assert len({result["exit_ip"] for result in results.values()}) == 9
    assert {result["worker"] for result in results.values()} == {1, 2, 3}
    assert set(run.notes()) == set(ids)
    assert "PRE-ALLOCATING 9 UNIQUE TOR EXIT IPs" in done.stderr
    assert "All 9 unique IPs pre-allocated!" in done.stderr
    assert "workers start while exits are still being allocated" in done.stderr
    assert "the allocator is still finishing" not in done.stderr


def test_stdin_with_every_url_form_comments_duplicates_and_a_bad_line(run, fake_youtube):
    forms = {
        "wAtCh000001": "https://www.youtube.com/watch?v=wAtCh000001&list=PL123&t=42s",
        "shortURL002": "https://youtu.be/shortURL002?si=abc&t=7",
        "shorts00003": "youtube.com/shorts/shorts00003",
        "embed000004": "https://www.youtube-nocookie.com/embed/embed000004?start=5",
        "live0000005": "https://www.youtube.com/live/live0000005?feature=share",
        "music000006": "https://music.youtube.com/watch?v=music000006&feature=share",
        "mobile00007": "https://m.youtube.com/watch?v=mobile00007#t=30",
        "bare_id0008": "bare_id0008   # a bare id with a comment",
    }
    lines = ["# lecture list", "", *forms.values(), "https://youtu.be/wAtCh000001", "https://example.com/x"]
    done = run("--parallel", "--file", "-", input="\n".join(lines) + "\n")
    assert done.returncode == 1, done.stderr  # all videos fetched, but one line was not a video
    assert "yt-study-buddy: skipping stdin:12: not a YouTube URL: 'https://example.com/x'" in done.stderr
    assert set(run.notes()) == set(forms)
    for vid in forms:  # the duplicate was fetched once: one watch page per video
        assert len([r for r in fake_youtube.served(video_id=vid) if r.path.startswith("/watch")]) == 1


def test_formats_and_language_priority(run, fake_youtube):
    fake_youtube.add_video(
        FakeVideo(
            "bilingual01", "Zwei Sprachen", "Kanal", tracks=(FakeTrack("en", "English"), FakeTrack("de", "German"))
        )
    )
    args = ["--lang", "de", "--lang", "en"] + [
        x for fmt in ("md", "txt", "json", "srt", "vtt") for x in ("--format", fmt)
    ]
    done = run("bilingual01", "englishonly", *args)
    assert done.returncode == 0, done.stderr
    for suffix in (".md", ".txt", ".json", ".srt", ".vtt"):
        assert set(run.notes(suffix)) == {"bilingual01", "englishonly"}
    german = json.loads(run.notes(".json")["bilingual01"].read_text())
    assert (german["language_code"], german["title"]) == ("de", "Zwei Sprachen")
    assert german["snippets"][0]["text"].startswith("[de] ")
    assert json.loads(run.notes(".json")["englishonly"].read_text())["language_code"] == "en"  # next in line
    assert "- **Language:** German (de), manual" in run.notes()["bilingual01"].read_text()
    assert run.notes(".srt")["bilingual01"].read_text().startswith("1\n00:00:0")
    assert run.notes(".vtt")["bilingual01"].read_text().startswith("WEBVTT\n")
    assert "[de] " in run.notes(".txt")["bilingual01"].read_text()


def test_search_finds_moments_of_notes_fetched_through_tor(run, fake_youtube):
    """The batch indexes each note as it writes it; search links each hit to its second."""
    cell = [
        Snippet("welcome back to biology.", 0.0, 3.0),
        Snippet("today: what powers a cell.", 20.0, 3.0),
        Snippet("the mitochondria is the powerhouse of the cell.", 48.0, 3.0),
        Snippet("it makes ATP.", 60.0, 3.0),
    ]
    heat = [Snippet("entropy always grows.", 0.0, 3.0), Snippet("so does the café's bill.", 50.0, 3.0)]
    fake_youtube.add_video(
        FakeVideo(
            "searchcell1", "Cells: the powerhouse", "Bio Hall", (FakeTrack("en", "English", snippets=tuple(cell)),)
        )
    )
    fake_youtube.add_video(
        FakeVideo("searchheat1", "Thermodynamics", "Physics Hall", (FakeTrack("en", "English", snippets=tuple(heat)),))
    )
    done = run("--parallel", "searchcell1", "searchheat1")
    assert done.returncode == 0, done.stderr
    assert (run.output / ".yt-study-buddy" / "search.sqlite3").exists()  # written by the batch

    found = run_cli("search", "mitochondria", "--output", str(run.output))
    assert found.returncode == 0, found.stderr
    assert found.stdout == (
        "Cells: the powerhouse  00:48  the mitochondria is the powerhouse of the cell. it makes ATP."
        "  https://www.youtube.com/watch?v=searchcell1&t=48s\n"
    )
    assert "indexed" not in found.stderr  # nothing left for search to index
    [hit] = json.loads(run_cli("search", "cafe", "--json", "--output", str(run.output)).stdout)
    assert (hit["video_id"], hit["start"], hit["url"]) == (
        "searchheat1",
        50,
        "https://www.youtube.com/watch?v=searchheat1&t=50s",
    )
    assert Path(hit["path"]) == run.notes()["searchheat1"]

    nothing = run_cli("search", "photosynthesis", "--output", str(run.output))
    assert (nothing.returncode, nothing.stdout) == (1, "")


def test_translate_with_every_option_from_the_environment(lab, fake_youtube, tmp_path):
    run = Run(tmp_path, fake_youtube)
    env = {
        "YTSB_TOR_CONTROL": "127.0.0.1:9051",
        "YTSB_TOR_SOCKS": "127.0.0.1:9050",
        "YTSB_TOR_PASSWORD": LAB_PASSWORD,
        "YTSB_CA_BUNDLE": str(fake_youtube.ca_path),
        "YTSB_STATE_DIR": str(run.state),
        "YTSB_OUTPUT": str(run.output),
        "YTSB_NO_LAUNCH_TOR": "1",
        "YTSB_FORMAT": "md json",
        "YTSB_TRANSLATE": "fr",
        "YTSB_JSON": "1",
        "YTSB_QUIET": "1",
    }
    done = run_cli("translate01", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fetched"] == 1
    assert done.stderr.startswith("done: fetched 1")  # quiet: only the summary
    document = json.loads(run.notes(".json")["translate01"].read_text())
    assert (document["language_code"], document["translated_from"]) == ("fr", "en")
    assert all(snippet["text"].startswith("[fr] ") for snippet in document["snippets"])
    assert "- **Language:** French (fr), auto-generated, translated from en" in run.notes()["translate01"].read_text()


def test_rerun_skips_done_retries_failed_and_force_refetches(run, fake_youtube):
    fake_youtube.script(Behavior.SERVER_ERROR, video_id="flaky000001")
    first = run("--parallel", "done0000001", "flaky000001", "--max-attempts", "1")
    assert first.returncode == 1
    assert "failed  flaky000001 server_error" in first.stderr
    fake_youtube.reset()  # YouTube recovers
    again = run("--parallel", "done0000001", "flaky000001", "--json")
    assert again.returncode == 0, again.stderr
    statuses = {r["video_id"]: r["status"] for r in json.loads(again.stdout)["results"]}
    assert statuses == {"done0000001": "skipped", "flaky000001": "fetched"}
    assert fake_youtube.served(video_id="done0000001") == []  # not even asked
    assert "batch: 2 videos, 1 already fetched" in again.stderr
    forced = run("done0000001", "--force")
    assert forced.returncode == 0 and "fetched done0000001" in forced.stderr
    assert len(fake_youtube.served(video_id="done0000001")) > 0
    history = {
        vid: [r["status"] for r in run.records("video") if r["video_id"] == vid]
        for vid in ("done0000001", "flaky000001")
    }
    assert history == {"done0000001": ["fetched", "fetched"], "flaky000001": ["failed", "fetched"]}


def test_blocked_exits_retried_then_reported_and_dead_videos_not_retried(run, fake_youtube):
    fake_youtube.script(Behavior.RECAPTCHA, video_id="blockedall1")
    fake_youtube.script(Behavior.RECAPTCHA, video_id="blockedonce", times=1)
    fake_youtube.script(Behavior.TRANSCRIPTS_DISABLED, video_id="nocaptions1")
    fake_youtube.script(Behavior.UNAVAILABLE, video_id="unavailable")
    done = run("-p", "blockedall1", "blockedonce", "nocaptions1", "unavailable", "--max-attempts", "3", "--json")
    assert done.returncode == 1
    results = {r["video_id"]: r for r in json.loads(done.stdout)["results"]}
    assert results["blockedall1"]["status"] == "failed" and results["blockedall1"]["error_kind"] == "blocked"
    assert results["blockedall1"]["attempts"] == 3 and len(exits_seen(fake_youtube, "blockedall1")) == 3
    assert "blocked blockedall1 recaptcha after 3 attempts" in done.stderr
    assert results["blockedonce"]["status"] == "fetched" and results["blockedonce"]["attempts"] == 2
    assert len(exits_seen(fake_youtube, "blockedonce")) == 2
    for vid, reason in (("nocaptions1", "transcripts_disabled"), ("unavailable", "video_unavailable")):
        assert (results[vid]["error_reason"], results[vid]["attempts"]) == (reason, 1)
        assert len(exits_seen(fake_youtube, vid)) == 1
        assert f"failed  {vid} {reason}: " in done.stderr and "(not retried)" in done.stderr
    assert "failed 3 (recaptcha 1, transcripts_disabled 1, video_unavailable 1)" in done.stderr


def test_wrong_control_password_warns_and_uses_the_cookie(lab, fake_youtube, tmp_path):
    # The lab's tor offers cookie auth too; stem falls back to it silently, so the CLI says so.
    run = Run(tmp_path, fake_youtube, password="not-the-password")
    done = run("passwords01")
    assert done.returncode == 0, done.stderr
    assert (
        "warning: tor refused the control password; authenticated with its cookie instead "
        "(drop --tor-password / YTSB_TOR_PASSWORD, or fix it)"
    ) in done.stderr.splitlines()


def test_socks_port_not_answering(lab, fake_youtube, tmp_path):
    run = Run(tmp_path, fake_youtube, socks=9359)
    run.args.remove("--no-launch-tor")  # tor's control port answers: nothing to launch anyway
    done = run("socksdead01", env={"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "yt-study-buddy: error: nothing answers on tor's SOCKS port "
        "127.0.0.1:9359 (Connection refused); point --tor-socks at it"
    )
    assert fake_youtube.requests == [] and not run.notes()


def test_every_exit_cooling_down_says_when_one_frees_up(run, lab, fake_youtube):
    with ExitLedger(run.state / "exit-ledger.sqlite3", cooldown=timedelta(hours=1)) as ledger:
        for fingerprint, ip in lab.exit_fingerprints.items():
            ledger.record_use(ip, fingerprint, outcome="ok")
    free_at = datetime.now(UTC) + timedelta(hours=1)
    done = run("cooling0001")
    assert done.returncode == 1
    when = re.search(
        r"failed  cooling0001 no_fresh_exit: no fresh exit after \d+ tries; the first cooling exit "
        r"frees up at (\d\d:\d\d:\d\d) UTC",
        done.stderr,
    )
    assert when, done.stderr
    hours, minutes, seconds = map(int, when.group(1).split(":"))
    drift = (
        hours * 3600 + minutes * 60 + seconds - (free_at - free_at.replace(hour=0, minute=0, second=0)).total_seconds()
    ) % 86400
    assert min(drift, 86400 - drift) < 60  # time of day only: the message has no date
    assert not [r for r in fake_youtube.requests if r.video_id]  # YouTube never asked from a cooling exit


def test_ctrl_c_stops_within_seconds_and_keeps_finished_notes(run, fake_youtube):
    fake_youtube.script(Behavior.SLOW, delay=1.0)
    ids = [f"ctrlc{n:06d}" for n in range(6)]
    process = run.popen("--parallel", "--workers", "2", *ids)
    try:
        run.wait_for_notes(1, process)
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the CLI did not stop after Ctrl-C")
    finally:
        process.kill()
    assert process.returncode == 1
    assert "stopping: videos in flight get 5 s to finish" in stderr
    fetched = {r["video_id"] for r in run.records("video") if r["status"] == "fetched"}
    [end] = run.records("run_end")
    assert fetched and set(run.notes()) == fetched
    assert end["pending"] and set(end["pending"]) == set(ids) - fetched
    assert f"not reached {len(end['pending'])}" in stderr


@pytest.mark.timeout(360)  # two labs of its own, two runs
def test_tor_dying_mid_run_keeps_notes_and_a_rerun_continues(fake_youtube, tmp_path):
    # A private lab of our own: the session lab is shared, so it must not be stopped.
    run = Run(tmp_path, fake_youtube, control=9351, socks=9350, password=None)
    run.args += ["--cooldown-hours", "0"]  # three exits serve both runs
    ids = [f"tordies{n:04d}" for n in range(4)]
    fake_youtube.script(Behavior.SLOW, delay=0.5)
    with TorLab(exits=3, socks_port=9350, control_port=9351, port_base=8000) as own:
        process = run.popen(*ids)
        try:
            run.wait_for_notes(1, process)
            own.stop()
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 1
    assert "tor is unusable, stopping: " in stderr
    fetched = {r["video_id"] for r in run.records("video") if r["status"] == "fetched"}
    [end] = run.records("run_end")
    assert fetched and set(run.notes()) == fetched and set(end["pending"]) == set(ids) - fetched
    fake_youtube.reset()
    with TorLab(exits=3, socks_port=9350, control_port=9351, port_base=8000):
        again = run(*ids)
    assert again.returncode == 0, again.stderr
    assert set(run.notes()) == set(ids)
    assert f"batch: 4 videos, {len(fetched)} already fetched" in again.stderr


def test_progress_bar_on_a_terminal_routes_logging_through_rich(run):
    controller, terminal = pty.openpty()
    env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "yt_study_buddy", "terminal001", *run.args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        os.close(controller)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode())  # drop colours and cursor moves
    assert re.search(r"INFO\s+PRE-ALLOCATING 1 UNIQUE TOR EXIT IPs", screen)  # a RichHandler line
    assert "fetched terminal001" in screen and "done: fetched 1" in screen
    assert "terminal001" in run.notes()


@pytest.mark.timeout(240)  # a tor of its own bootstraps (the run allows 180 s)
def test_launches_its_own_tor_when_none_answers(lab, fake_youtube, tmp_path):
    # The only tor on PATH is a wrapper that makes it a client of the lab (the guard in front of
    # the real tor still checks the namespace).
    bin_dir = tmp_path / "bin"
    lab.tor_wrapper(bin_dir)
    run = Run(tmp_path, fake_youtube, control=9361, socks=9360, password=None)
    run.args.remove("--no-launch-tor")
    done = run("launched001", env={"PATH": str(bin_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "no tor answers on 127.0.0.1:9361; starting a tor of our own (--no-launch-tor to refuse)" in done.stderr
    assert "rotation: pin (a tor of our own)" in done.stderr  # the default takes over only our own tor
    launched = re.search(r"launched tor \(pid (\d+)\): SOCKS 127\.0\.0\.1:\d+, control 127\.0\.0\.1:\d+", done.stderr)
    assert launched, done.stderr
    assert not Path(f"/proc/{launched.group(1)}").exists()  # it ended with the run
    seen = exits_seen(fake_youtube, "launched001")
    assert len(seen) == 1 and seen <= set(lab.exit_ips) and "launched001" in run.notes()  # an empty set would pass "<="
    # Its data lives in the user's cache dir, kept for a fast next bootstrap.
    assert (tmp_path / "cache" / "yt-study-buddy" / "tor" / "cached-consensus").is_file()


def test_doctor_on_the_lab_passes_every_check(run, fake_youtube):
    done = run_cli(
        "doctor",
        "--tor-control",
        "127.0.0.1:9051",
        "--tor-socks",
        "127.0.0.1:9050",
        "--tor-password",
        LAB_PASSWORD,
        "--ca-bundle",
        str(fake_youtube.ca_path),
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 9 and all(line.startswith("✓ ") for line in lines)


@pytest.mark.timeout(300)  # the demo starts its own lab (the run allows 240 s)
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for unshare --net")
def test_demo_writes_notes_offline(tmp_path):
    # The demo starts its own lab on the default ports: a fresh namespace keeps it off the session lab.
    fresh = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "jail"]
    done = subprocess.run(
        [*fresh, sys.executable, "-m", "yt_study_buddy", "demo", "--videos", "4", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    notes = list(tmp_path.glob("*.md"))
    assert len(notes) == 4
    assert all("\n## Recap and exam tips\n" in note.read_text() for note in notes)  # the demo shows chapters
    assert "the fake YouTube blocks exits 127.0.0.11, 127.0.0.12" in done.stderr
    assert "done: fetched 4, skipped 0, failed 0" in done.stderr
