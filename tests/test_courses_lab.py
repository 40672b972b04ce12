"""Courses end to end on the private Tor network: the CLI expands playlists and channels with
the real yt-dlp through a checked lab exit, then fetches their videos. The fake YouTube's log
shows where every expansion request came from."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from tests.test_cli import run_cli
from tests.test_cli_lab import Run
from yt_study_buddy.notes._formatters import clock
from yt_study_buddy.notes._front_matter import read_front_matter
from yt_study_buddy.testing.fake_youtube import Behavior, fake_channel, fake_playlist
from yt_study_buddy.tor._ledger import ExitLedger

pytestmark = pytest.mark.lab

COURSE_PATHS = (
    "/playlist",
    "/@",
    "/channel/",
    "/c/",
    "/user/",
    "/youtubei/v1/browse",
    "/youtubei/v1/navigation/resolve_url",
)


@pytest.fixture
def run(lab, fake_youtube, tmp_path) -> Run:
    return Run(tmp_path, fake_youtube)


#: An index line: "N. [title](link) — duration", then "— **failed**: why" or "— *pending*: why".
INDEX_LINE = re.compile(r"^(?P<n>\d+)\. (?:\[(?P<title>.*)\]\((?P<link>[^)]*)\)|(?P<plain>.*?)) — (?P<rest>.*)$")


def notes(run: Run) -> dict[str, list[Path]]:
    """Video id -> its Markdown notes, wherever they are in the output (root or course folders)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(run.output.rglob("*].md")):
        found.setdefault(path.stem.rsplit("[", 1)[1].rstrip("]"), []).append(path)
    return found


def index_lines(folder: Path) -> list[re.Match[str]]:
    """The index's video lines, each checked to be one."""
    lines = [line for line in (folder / "index.md").read_text().splitlines() if re.match(r"\d+\. ", line)]
    matches = [INDEX_LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m]


def linked_notes(folder: Path) -> list[Path]:
    """Every note the index links to, each checked to exist in the folder."""
    targets = [folder / unquote(m["link"]) for m in index_lines(folder) if m["link"]]
    missing = [t for t in targets if not t.is_file()]
    assert missing == []
    return targets


def watch_fetches(fake, video_id: str) -> int:
    return sum(1 for r in fake.served(video_id=video_id) if r.path == "/watch")


def course_log(fake, course_id: str) -> list[tuple[str, str, str, str]]:
    """(exit, method, path, outcome) of every request about this course, in order."""
    return [
        (r.client_ip, r.method, r.path, r.outcome)
        for r in fake.served(video_id=course_id)
        if r.path.startswith(COURSE_PATHS)
    ]


@pytest.mark.timeout(600)  # 250 fetches: minutes on a loaded machine (the CLI's own bound is 600 s)
def test_a_250_video_playlist_expanded_through_tor_past_a_blocked_exit_then_fetched(run, lab, fake_youtube):
    playlist = fake_playlist(250, seed="lab-250", title="Thermodynamics, the whole course")
    fake_youtube.add_course(playlist)
    # The expansion's second request (the first browse call) is blocked, whichever exit makes it.
    fake_youtube.script(Behavior.RATE_LIMITED_PLAYER, video_id=playlist.course_id, times=1)
    done = run(
        "--parallel",
        "--workers",
        "4",
        "--cooldown-hours",
        "0",
        "--json",
        f"https://www.youtube.com/playlist?list={playlist.course_id}",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    ids = [video.video_id for video in playlist.videos]
    [course] = summary["courses"]
    assert (course["kind"], course["id"], course["title"]) == ("playlist", playlist.course_id, playlist.title)
    assert [(e["position"], e["video_id"]) for e in course["entries"]] == list(enumerate(ids, start=1))
    assert [r["video_id"] for r in summary["results"]] == ids  # the batch keeps the course's order
    assert (summary["fetched"], summary["failed"], summary["failed_courses"]) == (250, 0, [])
    assert set(notes(run)) == set(ids)

    expansion = course_log(fake_youtube, playlist.course_id)
    [blocked] = [ip for ip, _, _, outcome in expansion if outcome == "429"]
    # The blocked exit read the page, was refused the first browse call and sent nothing more;
    # a fresh exit then made the whole expansion: page, reload, two continuations (3 pages).
    assert [entry for entry in expansion if entry[0] == blocked] == [
        (blocked, "GET", "/playlist", "ok"),
        (blocked, "POST", "/youtubei/v1/browse", "429"),
    ]
    rest = [entry for entry in expansion if entry[0] != blocked]
    assert [(method, path, outcome) for _, method, path, outcome in rest] == [("GET", "/playlist", "ok")] + [
        ("POST", "/youtubei/v1/browse", "ok")
    ] * 3
    assert len({ip for ip, *_ in rest}) == 1
    # Every expansion request came from a lab exit, none from the machine itself.
    assert {ip for ip, *_ in expansion} <= set(lab.exit_ips)
    with ExitLedger(run.state / "exit-ledger.sqlite3", cooldown=timedelta(0)) as ledger:
        state = ledger.state(blocked)
        uses = ledger.history(exit_ip=blocked)
    assert state is not None and state.quarantined_until is not None
    assert state.quarantined_until > datetime.now(UTC) + timedelta(hours=5)
    assert any(
        use.label == f"playlist {playlist.course_id}" and use.outcome == "blocked:too_many_requests" for use in uses
    )
    assert blocked not in {result["exit_ip"] for result in summary["results"]}  # quarantined: not used again


def test_a_channel_means_its_uploads(run, lab, fake_youtube):
    channel = fake_channel(40, seed="lab-channel", handle="@labprof", name="Lab Professor")
    fake_youtube.add_course(channel)
    done = run(
        "--parallel",
        "--workers",
        "3",
        "--cooldown-hours",
        "0",
        "--json",
        "https://www.youtube.com/@labprof",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    ids = [video.video_id for video in channel.videos]
    [course] = summary["courses"]
    assert (course["kind"], course["id"], course["title"], course["handle"]) == (
        "channel",
        channel.channel_id,
        "Lab Professor",
        "@labprof",
    )
    assert [e["video_id"] for e in course["entries"]] == ids
    folder = run.output / "Lab Professor [@labprof]"
    assert course["folder"] == folder.name
    assert [t.stem.rsplit("[", 1)[1].rstrip("]") for t in linked_notes(folder)] == ids
    assert "- **Uploads:** <https://www.youtube.com/@labprof/videos>" in (folder / "index.md").read_text()
    assert [r["video_id"] for r in summary["results"]] == ids and summary["fetched"] == 40
    expansion = course_log(fake_youtube, channel.course_id)
    assert [(method, path) for _, method, path, _ in expansion] == [
        ("GET", "/@labprof/videos"),
        ("POST", "/youtubei/v1/browse"),
    ]  # 30, then 10
    [exit_ip] = {ip for ip, *_ in expansion}
    assert exit_ip in lab.exit_ips
    assert f'channel @labprof "Lab Professor": 40 videos (via {exit_ip})' in done.stderr


def test_a_missing_playlist_and_an_unknown_channel_among_valid_inputs(run, lab, fake_youtube):
    playlist = fake_playlist(3, seed="lab-valid")
    fake_youtube.add_course(playlist)
    missing = "PLmissingMissingMissing0"
    private = fake_playlist(2, seed="lab-private", private=True)
    fake_youtube.add_course(private)
    done = run(
        "--json",
        "single00001",
        f"https://www.youtube.com/playlist?list={missing}",
        private.course_id,
        "https://www.youtube.com/@nosuchprofessor",
        playlist.course_id,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert [line for line in lines if missing in line] == [
        f"yt-study-buddy: skipping playlist {missing}: YouTube said: The playlist does not exist."
    ]
    assert [line for line in lines if private.course_id in line] == [
        f"yt-study-buddy: skipping playlist {private.course_id}: YouTube said: This playlist is private."
    ]
    assert [line for line in lines if "nosuchprofessor" in line] == [
        "yt-study-buddy: skipping channel @nosuchprofessor: YouTube knows no channel @nosuchprofessor (HTTP 404)"
    ]
    summary = json.loads(done.stdout)
    assert summary["exit_code"] == 1 and summary["fetched"] == 4 and summary["failed"] == 0
    assert [(f["id"], f["reason"]) for f in summary["failed_courses"]] == [
        (missing, "course_unavailable"),
        (private.course_id, "course_unavailable"),
        ("@nosuchprofessor", "course_not_found"),
    ]
    assert set(run.notes()) == {"single00001"}  # a video given on its own: the output's root
    assert set(notes(run)) == {"single00001", *(video.video_id for video in playlist.videos)}
    # Permanent: each was asked once, on one exit, and not retried elsewhere.
    assert [(m, p, o) for _, m, p, o in course_log(fake_youtube, missing)] == [("GET", "/playlist", "missing")]
    assert [(m, p, o) for _, m, p, o in course_log(fake_youtube, private.course_id)] == [
        ("GET", "/playlist", "private")
    ]
    unknown = course_log(fake_youtube, "@nosuchprofessor")
    assert [(m, p, o) for _, m, p, o in unknown] == [
        ("GET", "/@nosuchprofessor/videos", "not-found"),
        ("POST", "/youtubei/v1/navigation/resolve_url", "not-found"),
    ]
    assert len({ip for ip, *_ in unknown}) == 1 and unknown[0][0] in lab.exit_ips


def test_playlist_items_select_like_yt_dlp(run, lab, fake_youtube):
    playlist = fake_playlist(20, seed="lab-items")
    fake_youtube.add_course(playlist)
    done = run("--parallel", "--json", "-I", "1-3,5", playlist.course_id, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    chosen = {n: playlist.videos[n - 1].video_id for n in (1, 2, 3, 5)}
    assert [(e["position"], e["video_id"]) for e in summary["courses"][0]["entries"]] == list(chosen.items())
    assert set(notes(run)) == set(chosen.values())
    folder = run.output / summary["courses"][0]["folder"]
    assert [int(m["n"]) for m in index_lines(folder)] == [1, 2, 3, 5]
    assert [p.name[:6] for p in linked_notes(folder)] == ["001 - ", "002 - ", "003 - ", "005 - "]


def test_no_playlist_on_a_watch_url_with_a_list(run, lab, fake_youtube):
    playlist = fake_playlist(6, seed="lab-watch-list")
    fake_youtube.add_course(playlist)
    first, second = playlist.videos[0].video_id, playlist.videos[1].video_id
    url = f"https://www.youtube.com/watch?v={first}&list={playlist.course_id}&index=1"
    only = run("--no-playlist", url)
    assert only.returncode == 0, only.stderr
    assert set(notes(run)) == {first}
    assert course_log(fake_youtube, playlist.course_id) == []  # the playlist was never asked for
    # yt-dlp's default (--yes-playlist): the URL means its playlist; -I 2 takes its second video.
    whole = run("-I", "2", url)
    assert whole.returncode == 0, whole.stderr
    assert set(notes(run)) == {first, second}
    assert next(p for _, _, p, _ in course_log(fake_youtube, playlist.course_id)) == "/playlist"


def test_a_playlist_goes_to_its_folder_with_an_index_in_course_order(run, lab, fake_youtube):
    playlist = fake_playlist(12, seed="lab-folder", title="Thermo: heat & work [2026]")
    fake_youtube.add_course(playlist)
    done = run("--parallel", "--workers", "3", "--cooldown-hours", "0", "--json", playlist.course_id, timeout=300)
    assert done.returncode == 0, done.stderr
    [course] = json.loads(done.stdout)["courses"]
    folder = run.output / f"Thermo - heat & work [2026] [{playlist.course_id}]"
    assert course["folder"] == folder.name and folder.is_dir()
    ids = [video.video_id for video in playlist.videos]
    assert list(run.output.glob("*.md")) == []  # nothing in the root
    assert sorted(p.name for p in folder.glob("*.md")) == sorted(
        [
            "index.md",
            *(f"{n:03d} - {v.title.replace(':', ' -')} [{v.video_id}].md" for n, v in enumerate(playlist.videos, 1)),
        ]
    )
    text = (folder / "index.md").read_text()
    assert text.startswith(f"# Thermo: heat & work \\[2026\\]\n\n- **Channel:** {playlist.channel}\n")
    assert "- **Videos:** 12\n" in text
    total = sum(playlist.duration(v) for v in playlist.videos)
    assert f"- **Total duration:** {clock(total)}\n" in text
    lines = index_lines(folder)
    assert [int(m["n"]) for m in lines] == list(range(1, 13))
    assert [m["title"] for m in lines] == [v.title for v in playlist.videos]
    targets = linked_notes(folder)  # every link opens its note
    assert [t.stem.rsplit("[", 1)[1].rstrip("]") for t in targets] == ids
    assert all("failed" not in m["rest"] and "pending" not in m["rest"] for m in lines)
    assert all(f"watch?v={vid}" in t.read_text() for vid, t in zip(ids, targets, strict=True))
    for position, target in enumerate(targets, start=1):  # each note knows its course and place
        head, _, _ = target.read_text().removeprefix("---\n").partition("\n---\n")
        fields = yaml.safe_load(head)  # a YAML parser, not ours
        assert fields["playlist"] == {"title": playlist.title, "id": playlist.course_id, "kind": "playlist"}
        assert (fields["position"], fields["video_id"]) == (position, ids[position - 1])
    # Search reaches into the course folder: each hit links to its video's second and its note.
    found = run_cli("search", "--json", "--limit", "100", "board", "--output", str(run.output))
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and {Path(h["path"]) for h in hits} <= set(targets)
    for hit in hits:
        assert hit["url"] == f"https://www.youtube.com/watch?v={hit['video_id']}&t={hit['start']}s"
        assert Path(hit["path"]).name.endswith(f"[{hit['video_id']}].md")
    title = playlist.videos[0].title
    by_title = json.loads(run_cli("search", "--json", f'title:"{title}"', "--output", str(run.output)).stdout)
    assert (by_title[0]["video_id"], by_title[0]["start"], Path(by_title[0]["path"])) == (ids[0], 0, targets[0])


def test_a_rerun_after_the_playlist_grew_fetches_only_the_new_videos(run, lab, fake_youtube):
    grown = fake_playlist(8, seed="lab-grown", title="Growing course")
    fake_youtube.add_course(dataclasses.replace(grown, videos=grown.videos[:5]))
    first = run("--parallel", "--cooldown-hours", "0", "--json", grown.course_id, timeout=300)
    assert first.returncode == 0, first.stderr
    folder = run.output / json.loads(first.stdout)["courses"][0]["folder"]
    assert len(index_lines(folder)) == 5
    fake_youtube.add_course(grown)  # three lectures more
    before = {v.video_id: watch_fetches(fake_youtube, v.video_id) for v in grown.videos}
    again = run("--parallel", "--cooldown-hours", "0", "--json", grown.course_id, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["fetched"], summary["skipped"]) == (3, 5)
    fetched_now = {v.video_id for v in grown.videos if watch_fetches(fake_youtube, v.video_id) > before[v.video_id]}
    assert fetched_now == {v.video_id for v in grown.videos[5:]}
    lines = index_lines(folder)  # rewritten: all eight, in order, every link live
    assert [int(m["n"]) for m in lines] == list(range(1, 9))
    assert [t.stem.rsplit("[", 1)[1].rstrip("]") for t in linked_notes(folder)] == [v.video_id for v in grown.videos]
    assert "- **Videos:** 8\n" in (folder / "index.md").read_text()


def test_a_video_in_two_courses_is_fetched_once_and_noted_in_both(run, lab, fake_youtube):
    a = fake_playlist(3, seed="lab-two-a", title="Course A")
    b = fake_playlist(3, seed="lab-two-b", title="Course B")
    shared = a.videos[1]
    b = dataclasses.replace(b, videos=(b.videos[0], shared, b.videos[2]))
    c = fake_playlist(2, seed="lab-two-c", title="Course C")
    c = dataclasses.replace(c, videos=(shared, c.videos[1]))
    for course in (a, b, c):
        fake_youtube.add_course(course)
    done = run("--parallel", "--cooldown-hours", "0", "--json", a.course_id, b.course_id, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert [r["video_id"] for r in summary["results"]].count(shared.video_id) == 1
    assert watch_fetches(fake_youtube, shared.video_id) == 1
    folders = [run.output / course["folder"] for course in summary["courses"]]
    assert [p.parent for p in notes(run)[shared.video_id]] == folders
    assert [p.name[:6] for p in notes(run)[shared.video_id]] == ["002 - ", "002 - "]
    for folder in folders:
        assert len(linked_notes(folder)) == 3
    # A third course, later: the shared video is done, so it is copied in, not fetched again.
    later = run("--cooldown-hours", "0", "--json", c.course_id, timeout=300)
    assert later.returncode == 0, later.stderr
    assert watch_fetches(fake_youtube, shared.video_id) == 1
    folder_c = run.output / json.loads(later.stdout)["courses"][0]["folder"]
    copy = linked_notes(folder_c)[0]
    assert copy.name.startswith("001 - ")
    parsed, original = (
        read_front_matter(copy.read_text()),
        read_front_matter(notes(run)[shared.video_id][0].read_text()),
    )
    assert parsed is not None and original is not None and parsed[1] == original[1]  # the same note...
    assert (parsed[0]["playlist"]["id"], parsed[0]["position"]) == (c.course_id, 1)  # ...placed in course C
    assert {k: v for k, v in parsed[0].items() if k not in ("playlist", "position")} == {
        k: v for k, v in original[0].items() if k not in ("playlist", "position")
    }


def test_a_failed_video_is_marked_in_the_index_with_its_reason(run, lab, fake_youtube):
    playlist = fake_playlist(4, seed="lab-failed", title="Course with a gap")
    fake_youtube.add_course(playlist)
    broken = playlist.videos[2]
    fake_youtube.script(Behavior.TRANSCRIPTS_DISABLED, video_id=broken.video_id)
    done = run("--cooldown-hours", "0", "--json", playlist.course_id, timeout=300)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    [failure] = [r for r in summary["results"] if r["status"] == "failed"]
    folder = run.output / summary["courses"][0]["folder"]
    lines = index_lines(folder)
    assert [m["link"] is not None for m in lines] == [True, True, False, True]
    assert lines[2]["plain"] == broken.title
    assert re.sub(r"\\(.)", r"\1", lines[2]["rest"]).endswith("**failed**: " + failure["error"])
    assert "(3 fetched, 1 failed, 0 pending)" in (folder / "index.md").read_text()
    # Fixed upstream: a re-run fetches only that one, and the index shows it fetched.
    fake_youtube.reset()
    fake_youtube.add_course(playlist)
    again = run("--cooldown-hours", "0", "--json", playlist.course_id, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["fetched"], json.loads(again.stdout)["skipped"]) == (1, 3)
    assert len(linked_notes(folder)) == 4 and "failed" not in (folder / "index.md").read_text()


def test_ctrl_c_mid_course_still_writes_the_index_with_the_rest_pending(run, lab, fake_youtube):
    playlist = fake_playlist(6, seed="lab-ctrl-c", title="Interrupted course")
    fake_youtube.add_course(playlist)
    fake_youtube.script(Behavior.SLOW, delay=1.0)
    process = run.popen("--parallel", "--workers", "2", "--cooldown-hours", "0", playlist.course_id)
    try:
        deadline = time.monotonic() + 120
        while not notes(run):
            assert process.poll() is None, process.communicate(timeout=10)
            assert time.monotonic() < deadline, "no note appeared"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    [folder] = [p for p in run.output.iterdir() if p.name.endswith(f"[{playlist.course_id}]")]
    lines = index_lines(folder)
    assert [int(m["n"]) for m in lines] == list(range(1, 7))
    done = {t.stem.rsplit("[", 1)[1].rstrip("]") for t in linked_notes(folder)}
    assert done and done == set(notes(run))  # every note fetched before the stop is linked
    pending = [m for m in lines if not m["link"]]
    assert pending and all(m["rest"].endswith("*pending*: not fetched: the run was interrupted") for m in pending)
