"""Courses without Tor: parsing playlist and channel inputs, ``-I`` selections, and the real
yt-dlp expanding the fake YouTube's playlists and channels over a plain session on loopback
(the connection to www.youtube.com is pointed at the fake; TLS, Host and paths are real).
The same expansions through the private Tor network are in test_courses_lab.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
import urllib3.util.connection

from yt_study_buddy._exceptions import InvalidVideoInput
from yt_study_buddy.testing.fake_youtube import Behavior, FakeYouTube, fake_channel, fake_playlist
from yt_study_buddy.testing.fake_youtube._courses import CHANNEL_PAGE_SIZE, PLAYLIST_PAGE_SIZE
from yt_study_buddy.youtube import (
    CourseKind,
    CourseRef,
    FailureKind,
    FetchFailure,
    _ytdlp,
    check_playlist_items,
    expand_course,
    parse_input,
    read_video_list,
)

VIDEO = "dQw4w9WgXcQ"
PLAYLIST = "PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"
UCID = "UC38IQsAvIsxxjztdMZQtwHA"


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "course_id", "url"),
    [
        (
            f"https://www.youtube.com/playlist?list={PLAYLIST}",
            "playlist",
            PLAYLIST,
            f"https://www.youtube.com/playlist?list={PLAYLIST}",
        ),
        (f"youtube.com/playlist?list={PLAYLIST}&si=x", "playlist", PLAYLIST, None),
        (f"https://m.youtube.com/playlist?list={PLAYLIST}", "playlist", PLAYLIST, None),
        (PLAYLIST, "playlist", PLAYLIST, None),
        (f"https://www.youtube.com/watch?v={VIDEO}&list={PLAYLIST}&index=3", "playlist", PLAYLIST, None),
        (f"https://youtu.be/{VIDEO}?list={PLAYLIST}", "playlist", PLAYLIST, None),
        (f"https://www.youtube.com/watch?list={PLAYLIST}", "playlist", PLAYLIST, None),
        (f"https://www.youtube.com/embed/videoseries?list={PLAYLIST}", "playlist", PLAYLIST, None),
        (
            "https://www.youtube.com/@SomeChannel",
            "channel",
            "@SomeChannel",
            "https://www.youtube.com/@SomeChannel/videos",
        ),
        ("https://www.youtube.com/@SomeChannel/videos", "channel", "@SomeChannel", None),
        ("www.youtube.com/@Some.Channel/", "channel", "@Some.Channel", None),
        (f"https://www.youtube.com/channel/{UCID}", "channel", UCID, f"https://www.youtube.com/channel/{UCID}/videos"),
        (f"https://www.youtube.com/channel/{UCID}/videos?view=0", "channel", UCID, None),
        ("https://www.youtube.com/c/Lectures", "channel", "c/Lectures", "https://www.youtube.com/c/Lectures/videos"),
        (
            "https://www.youtube.com/user/oldname/videos",
            "channel",
            "user/oldname",
            "https://www.youtube.com/user/oldname/videos",
        ),
        ("https://www.youtube.com/@SomeChannel/featured", "channel", "@SomeChannel", None),
    ],
)
def test_course_inputs(text: str, kind: str, course_id: str, url: str | None) -> None:
    ref = parse_input(text)
    assert isinstance(ref, CourseRef)
    assert (ref.kind.value, ref.id) == (kind, course_id)
    if url is not None:
        assert ref.url == url


def test_no_playlist_makes_a_watch_url_with_a_list_its_video() -> None:
    for text in (
        f"https://www.youtube.com/watch?v={VIDEO}&list={PLAYLIST}",
        f"https://youtu.be/{VIDEO}?list={PLAYLIST}",
    ):
        assert parse_input(text, playlists=False) == VIDEO
    # Like yt-dlp's --no-playlist: a URL that is only a playlist stays the playlist.
    assert parse_input(f"https://www.youtube.com/playlist?list={PLAYLIST}", playlists=False) == CourseRef(
        CourseKind.PLAYLIST, PLAYLIST
    )


def test_a_list_that_is_no_playlist_id_leaves_the_video() -> None:
    assert parse_input(f"https://www.youtube.com/watch?v={VIDEO}&list=PL123") == VIDEO


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://www.youtube.com/playlist?list=PL123", "invalid playlist id 'PL123'"),
        ("https://www.youtube.com/playlist", "not a video URL"),
        ("https://www.youtube.com/@SomeChannel/shorts", "not its 'shorts' tab"),
        (f"https://www.youtube.com/channel/{UCID}/playlists", "not its 'playlists' tab"),
        ("https://www.youtube.com/channel/UCshort", "not a video URL"),
        ("https://youtu.be/@SomeChannel", "invalid video id"),
        (f"https://example.com/playlist?list={PLAYLIST}", "not a YouTube URL"),
        ("PL123", "has 5 characters"),
    ],
)
def test_bad_course_inputs_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidVideoInput, match=re.escape(message)):
        parse_input(text)


def test_read_video_list_keeps_courses_in_place_and_once() -> None:
    lines = [
        f"https://youtu.be/{VIDEO}",
        f"https://www.youtube.com/playlist?list={PLAYLIST}",
        "https://www.youtube.com/@prof  # the professor",
        PLAYLIST,
        "nope",
    ]
    result = read_video_list(lines)
    playlist, channel = CourseRef(CourseKind.PLAYLIST, PLAYLIST), CourseRef(CourseKind.CHANNEL, "@prof")
    assert result.items == [VIDEO, playlist, channel]
    assert result.ids == [VIDEO]
    assert result.duplicates == [(4, f"playlist {PLAYLIST}")]
    assert [number for number, _, _ in result.errors] == [5]


@pytest.mark.parametrize("spec", ["1-10,15", "1-3,5", "1", "-1", "-5:", "::2", "3:7", "10-", "1-3,5,7-9:2", "1:inf"])
def test_playlist_items_yt_dlp_takes(spec: str) -> None:
    assert check_playlist_items(spec) == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [("", "empty"), ("1,,3", "consecutive commas"), ("a-b", "not a valid"), ("1-3:0", "cannot be zero")],
)
def test_playlist_items_yt_dlp_refuses(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_playlist_items(spec)


# --- the real yt-dlp against the fake ----------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeYouTube]:
    with FakeYouTube(port=0) as server:
        yield server


@pytest.fixture
def session(fake: FakeYouTube, monkeypatch: pytest.MonkeyPatch) -> Iterator[requests.Session]:
    """A plain session whose connections to any host:443 reach the fake; it counts its requests."""
    connect = urllib3.util.connection.create_connection

    def to_fake(address, *args, **kwargs):
        assert address[1] == 443, address
        return connect(("127.0.0.1", fake.port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", to_fake)
    # yt-dlp must not use the environment's proxies (this one would fail every request).
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    fake.reset()
    with requests.Session() as plain:
        plain.trust_env = False
        plain.verify = str(fake.ca_path)
        plain.sent = []  # type: ignore[attr-defined]
        plain.hooks["response"].append(lambda r, *a, **k: plain.sent.append(r.request.url))  # type: ignore[attr-defined]
        yield plain


def course_requests(fake: FakeYouTube) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, r.outcome) for r in fake.requests]


def test_a_250_video_playlist_over_three_pages_in_order(fake, session):
    playlist = fake_playlist(250, seed="unit-250", title="Linear algebra, the whole course")
    fake.add_course(playlist)
    course = expand_course(session, CourseRef(CourseKind.PLAYLIST, playlist.course_id))
    assert (course.kind, course.id, course.title) == (CourseKind.PLAYLIST, playlist.course_id, playlist.title)
    assert (course.channel, course.handle) == (playlist.channel, playlist.handle)
    assert course.video_ids == [video.video_id for video in playlist.videos]
    assert [entry.position for entry in course.entries] == list(range(1, 251))
    assert [entry.title for entry in course.entries] == [video.title for video in playlist.videos]
    assert [entry.duration for entry in course.entries] == [playlist.duration(v) for v in playlist.videos]
    # The page, yt-dlp's reload "with unavailable videos", then two continuations: 100+100+50.
    assert course_requests(fake) == [("GET", "/playlist", "ok")] + [("POST", "/youtubei/v1/browse", "ok")] * 3
    assert PLAYLIST_PAGE_SIZE == 100
    # Every request the fake saw went through the session handed in, and only ours handled them.
    assert len(session.sent) == len(fake.requests) == 4


def test_yt_dlp_has_no_request_handler_but_ours(fake, session):
    playlist = fake_playlist(3, seed="unit-handlers")
    fake.add_course(playlist)
    extraction = _ytdlp.Extraction(session, timeout=10.0)
    extraction.extract(CourseRef(CourseKind.PLAYLIST, playlist.course_id).url)
    assert extraction.handlers == ["Session"]  # SessionRH, and no urllib, requests or curl_cffi
    assert extraction.requests_sent == len(session.sent) == len(fake.requests) == 2


@pytest.mark.parametrize("form", ["handle", "handle/videos", "channel", "c", "user"])
def test_a_channel_means_its_uploads_by_every_url_form(fake, session, form):
    channel = fake_channel(
        70, seed="unit-channel", handle="@unitprof", name="Unit Professor", custom_url="UnitProf", user_name="unitprof"
    )
    fake.add_course(channel)
    text = {
        "handle": "https://www.youtube.com/@unitprof",
        "handle/videos": "https://www.youtube.com/@unitprof/videos",
        "channel": f"https://www.youtube.com/channel/{channel.channel_id}",
        "c": "https://www.youtube.com/c/UnitProf",
        "user": "https://www.youtube.com/user/unitprof",
    }[form]
    ref = parse_input(text)
    assert isinstance(ref, CourseRef)
    course = expand_course(session, ref)
    assert (course.kind, course.id, course.title, course.handle) == (
        CourseKind.CHANNEL,
        channel.channel_id,
        "Unit Professor",
        "@unitprof",
    )
    assert course.video_ids == [video.video_id for video in channel.videos]
    assert [entry.position for entry in course.entries] == list(range(1, 71))
    # The Videos tab (30), then two continuations (30, 10); no other tab is asked for.
    assert CHANNEL_PAGE_SIZE == 30
    assert [r.path for r in fake.requests] == [ref.url.removeprefix("https://www.youtube.com")] + [
        "/youtubei/v1/browse"
    ] * 2


def test_playlist_items_select_like_yt_dlp_and_keep_positions(fake, session):
    playlist = fake_playlist(250, seed="unit-items")
    fake.add_course(playlist)
    ref = CourseRef(CourseKind.PLAYLIST, playlist.course_id)
    course = expand_course(session, ref, playlist_items="1-3,5")
    assert [(e.position, e.video_id) for e in course.entries] == [
        (n, playlist.videos[n - 1].video_id) for n in (1, 2, 3, 5)
    ]
    assert len(fake.requests) == 2  # the first page has them: no continuation was asked for
    fake.reset()
    last = expand_course(session, ref, playlist_items="-2:,150")
    assert [(e.position, e.video_id) for e in last.entries] == [
        (n, playlist.videos[n - 1].video_id) for n in (249, 250, 150)
    ]
    fake.reset()
    example = expand_course(session, ref, playlist_items="1-10,15")  # the issue's own example
    assert [(e.position, e.video_id) for e in example.entries] == [
        (n, playlist.videos[n - 1].video_id) for n in (*range(1, 11), 15)
    ]
    twice = expand_course(session, ref, playlist_items="3,1,3,1-2")  # each once, in the order first named
    assert [e.position for e in twice.entries] == [3, 1, 2]


@pytest.mark.parametrize(
    ("add", "text", "reason", "message"),
    [
        (
            False,
            "https://www.youtube.com/playlist?list=PLmissingMissingMissing0",
            "course_unavailable",
            "YouTube said: The playlist does not exist.",
        ),
        (True, "private", "course_unavailable", "YouTube said: This playlist is private."),
        (
            False,
            "https://www.youtube.com/@nobodyhere",
            "course_not_found",
            "YouTube knows no channel @nobodyhere (HTTP 404)",
        ),
    ],
)
def test_missing_private_and_unknown_are_permanent(fake, session, add, text, reason, message):
    if add:
        private = fake_playlist(5, seed="unit-private", private=True)
        fake.add_course(private)
        text = private.course_id
    ref = parse_input(text)
    assert isinstance(ref, CourseRef)
    with pytest.raises(FetchFailure) as caught:
        expand_course(session, ref)
    assert (caught.value.kind, caught.value.reason, str(caught.value)) == (FailureKind.PERMANENT, reason, message)


@pytest.mark.parametrize(
    ("behavior", "reason", "at"),
    [
        (Behavior.RECAPTCHA_REDIRECT, "recaptcha", "/playlist"),
        (Behavior.RECAPTCHA, "recaptcha", "/playlist"),
        (Behavior.RATE_LIMITED_WATCH, "too_many_requests", "/playlist"),
        (Behavior.RATE_LIMITED_PLAYER, "too_many_requests", "/youtubei/v1/browse"),
    ],
)
def test_a_block_stops_the_expansion_at_once(fake, session, behavior, reason, at):
    playlist = fake_playlist(150, seed="unit-block")
    fake.add_course(playlist)
    fake.script(behavior, video_id=playlist.course_id)
    with pytest.raises(FetchFailure) as caught:
        expand_course(session, CourseRef(CourseKind.PLAYLIST, playlist.course_id))
    assert (caught.value.kind, caught.value.reason) == (FailureKind.BLOCKED, reason)
    # Nothing was sent after the blocked answer (no fallback from the same exit).
    course_paths = [r.path for r in fake.requests if r.path != "/sorry/index"]
    assert course_paths[-1] == at


def test_server_errors_and_odd_answers_are_retryable(fake, session):
    playlist = fake_playlist(5, seed="unit-500")
    fake.add_course(playlist)
    fake.script(Behavior.SERVER_ERROR, video_id=playlist.course_id, times=1)
    with pytest.raises(FetchFailure) as caught:
        expand_course(session, CourseRef(CourseKind.PLAYLIST, playlist.course_id))
    assert (caught.value.kind, caught.value.reason) == (FailureKind.RETRYABLE, "server_error")
    assert len(fake.requests) == 1  # yt-dlp did not retry on the same exit: the caller moves on
    assert expand_course(session, CourseRef(CourseKind.PLAYLIST, playlist.course_id)).video_ids  # recovered


def test_a_stalled_page_times_out_as_retryable(fake, session):
    playlist = fake_playlist(5, seed="unit-stall")
    fake.add_course(playlist)
    fake.script(Behavior.STALL, video_id=playlist.course_id, times=1)
    with pytest.raises(FetchFailure) as caught:
        expand_course(session, CourseRef(CourseKind.PLAYLIST, playlist.course_id), timeout=1.0)
    assert (caught.value.kind, caught.value.reason) == (FailureKind.RETRYABLE, "timeout")


def test_a_bad_selection_is_a_usage_error_before_tor_is_asked() -> None:
    from tests.test_cli import run_cli

    done = run_cli("fetch", PLAYLIST, "-I", "1,,3", "--tor-control", "127.0.0.1:9", "--no-launch-tor")
    assert done.returncode == 2
    assert "Invalid value for '-I' / '--playlist-items': There is two or more consecutive commas" in done.stderr
    assert "tor" not in done.stderr.lower()
