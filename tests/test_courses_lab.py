"""Courses end to end on the private Tor network: the CLI expands playlists and channels with
the real yt-dlp through a checked lab exit, then fetches their videos. The fake YouTube's log
shows where every expansion request came from."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.test_cli_lab import Run
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


def course_log(fake, course_id: str) -> list[tuple[str, str, str, str]]:
    """(exit, method, path, outcome) of every request about this course, in order."""
    return [
        (r.client_ip, r.method, r.path, r.outcome)
        for r in fake.served(video_id=course_id)
        if r.path.startswith(COURSE_PATHS)
    ]


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
    assert set(run.notes()) == set(ids)

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
    done = run(
        "--json",
        "single00001",
        f"https://www.youtube.com/playlist?list={missing}",
        "https://www.youtube.com/@nosuchprofessor",
        playlist.course_id,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert [line for line in lines if missing in line] == [
        f"yt-study-buddy: skipping playlist {missing}: YouTube said: The playlist does not exist."
    ]
    assert [line for line in lines if "nosuchprofessor" in line] == [
        "yt-study-buddy: skipping channel @nosuchprofessor: YouTube knows no channel @nosuchprofessor (HTTP 404)"
    ]
    summary = json.loads(done.stdout)
    assert summary["exit_code"] == 1 and summary["fetched"] == 4 and summary["failed"] == 0
    assert [f["reason"] for f in summary["failed_courses"]] == ["course_unavailable", "course_not_found"]
    assert set(run.notes()) == {"single00001", *(video.video_id for video in playlist.videos)}
    # Permanent: each was asked once, on one exit, and not retried elsewhere.
    assert [(m, p, o) for _, m, p, o in course_log(fake_youtube, missing)] == [("GET", "/playlist", "missing")]
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
    assert set(run.notes()) == set(chosen.values())


def test_no_playlist_on_a_watch_url_with_a_list(run, lab, fake_youtube):
    playlist = fake_playlist(6, seed="lab-watch-list")
    fake_youtube.add_course(playlist)
    first, second = playlist.videos[0].video_id, playlist.videos[1].video_id
    url = f"https://www.youtube.com/watch?v={first}&list={playlist.course_id}&index=1"
    only = run("--no-playlist", url)
    assert only.returncode == 0, only.stderr
    assert set(run.notes()) == {first}
    assert course_log(fake_youtube, playlist.course_id) == []  # the playlist was never asked for
    # yt-dlp's default (--yes-playlist): the URL means its playlist; -I 2 takes its second video.
    whole = run("-I", "2", url)
    assert whole.returncode == 0, whole.stderr
    assert set(run.notes()) == {first, second}
    assert next(p for _, _, p, _ in course_log(fake_youtube, playlist.course_id)) == "/playlist"
