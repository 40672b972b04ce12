"""The fake YouTube against the real youtube-transcript-api 1.2.x: transcripts come through, and
every scripted failure raises exactly what real YouTube makes the library raise (research §1.6).

The library's URLs are fixed (https://www.youtube.com:443). Most tests reach the fake without Tor
through ``LoopbackAdapter``, which connects to the fake's address (optionally from a chosen
127.0.0.x source, standing in for an exit) while SNI, certificate check and Host stay
www.youtube.com. The lab tests go through the private Tor network. All of this needs netjail
(port 443 and 127.0.0.x sources): run the file inside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from xml.etree.ElementTree import ParseError

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.util import connection as urllib3_connection
from youtube_transcript_api import (
    AgeRestricted,
    InvalidVideoId,
    IpBlocked,
    NoTranscriptFound,
    PoTokenRequired,
    RequestBlocked,
    TranscriptsDisabled,
    VideoUnavailable,
    VideoUnplayable,
    YouTubeRequestFailed,
    YouTubeTranscriptApi,
)

from yt_study_buddy.testing import TorLab
from yt_study_buddy.testing.fake_youtube import Behavior, FakeYouTube, LoggedRequest
from yt_study_buddy.testing.fake_youtube._pages import (
    API_KEY,
    FakeTrack,
    FakeVideo,
    generate_snippets,
    sample_videos,
)
from yt_study_buddy.youtube import Snippet

VIDEO = "dQw4w9WgXcQ"
OTHER = "9bZkp7q19f0"


class LoopbackAdapter(HTTPAdapter):
    """HTTPS to ``address`` whatever the URL's host, from ``source_ip``; a default timeout
    because the library never passes one. Counts the TCP connections it opens."""

    def __init__(self, address: tuple[str, int], *, source_ip: str, timeout: float) -> None:
        self.connections = 0
        self._address, self._source_ip, self._timeout = address, source_ip, timeout
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        adapter = self

        class Connection(HTTPSConnection):
            def _new_conn(self):
                adapter.connections += 1
                return urllib3_connection.create_connection(
                    adapter._address,
                    self.timeout,
                    source_address=(adapter._source_ip, 0),
                    socket_options=self.socket_options,
                )

        class Pool(HTTPSConnectionPool):
            ConnectionCls = Connection

        manager = self.poolmanager
        manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": Pool}

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def fake_session(fake: FakeYouTube) -> requests.Session:
    """A Session that trusts the fake's CA. ``trust_env`` off: otherwise REQUESTS_CA_BUNDLE
    silently overrides ``Session.verify`` for calls without ``verify=`` (the library's)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(fake.ca_path)
    return session


def direct_session(fake: FakeYouTube, *, source_ip: str = "127.0.0.1", timeout: float = 10.0) -> requests.Session:
    session = fake_session(fake)
    adapter = LoopbackAdapter((fake.host, fake.port), source_ip=source_ip, timeout=timeout)
    session.mount("https://", adapter)
    return session


@pytest.fixture
def session(fake_youtube: FakeYouTube) -> Iterator[requests.Session]:
    with direct_session(fake_youtube) as opened:
        yield opened


@pytest.fixture
def api(session: requests.Session) -> YouTubeTranscriptApi:
    return YouTubeTranscriptApi(http_client=session)


def outcomes(fake: FakeYouTube) -> list[tuple[str, str]]:
    return [(entry.path, entry.outcome) for entry in fake.requests]


# --- happy paths --------------------------------------------------------------------------


def test_fetch_unregistered_id_gets_its_default_transcript_over_one_connection(
    fake_youtube: FakeYouTube, session: requests.Session, api: YouTubeTranscriptApi
) -> None:
    fetched = api.fetch(VIDEO)

    expected = fake_youtube.video(VIDEO).snippets("en")
    assert [Snippet(s.text, s.start, s.duration) for s in fetched] == expected
    assert 30 <= len(expected) <= 48
    assert (fetched.language_code, fetched.is_generated) == ("en", False)
    assert outcomes(fake_youtube) == [
        ("/watch", "ok"),
        ("/youtubei/v1/player", "ok"),
        ("/api/timedtext", "ok"),
    ]
    assert {e.video_id for e in fake_youtube.requests} == {VIDEO}
    assert fake_youtube.exits_seen(VIDEO) == ["127.0.0.1"]
    adapter = session.get_adapter("https://www.youtube.com")
    assert isinstance(adapter, LoopbackAdapter) and adapter.connections == 1


def test_registered_video_escapes_like_youtube_and_round_trips(
    fake_youtube: FakeYouTube, session: requests.Session, api: YouTubeTranscriptApi
) -> None:
    lines = (Snippet('Tom & Jerry\'s "big" day', 0.5, 2.25), Snippet("x", 2.75, 1.0))
    fake_youtube.add_video(FakeVideo(OTHER, "Cartoons", "Archive", (FakeTrack("en", "English", snippets=lines),)))

    assert [Snippet(s.text, s.start, s.duration) for s in api.fetch(OTHER)] == list(lines)
    raw = session.get(f"https://www.youtube.com/api/timedtext?v={OTHER}&lang=en").text
    assert "Tom &amp;amp; Jerry&amp;#39;s &amp;quot;big&amp;quot; day" in raw


def test_manual_and_generated_tracks_are_listed_and_fetched(
    fake_youtube: FakeYouTube, api: YouTubeTranscriptApi
) -> None:
    tracks = (
        FakeTrack("en", "English"),
        FakeTrack("de", "German (auto-generated)", generated=True, translatable=False),
    )
    fake_youtube.add_video(FakeVideo(OTHER, "Lecture", "Uni", tracks))

    listed = {(t.language_code, t.is_generated, t.is_translatable) for t in api.list(OTHER)}
    assert listed == {("en", False, True), ("de", True, False)}
    german = api.list(OTHER).find_generated_transcript(["de"]).fetch()
    assert german[0].text.startswith("[de] ")
    expected = fake_youtube.video(OTHER).snippets("de", generated=True)
    assert [s.text for s in german] == [s.text for s in expected]
    assert german.is_generated


def test_translation_returns_recognisable_translated_text(fake_youtube: FakeYouTube, api: YouTubeTranscriptApi) -> None:
    french = api.list(VIDEO).find_transcript(["en"]).translate("fr").fetch()

    expected = fake_youtube.video(VIDEO).snippets("en", translate_to="fr")
    assert [Snippet(s.text, s.start, s.duration) for s in french] == expected
    assert all(s.text.startswith("[fr] ") for s in french)
    assert fake_youtube.requests[-1].path == "/api/timedtext"


def test_consent_wall_is_passed_with_the_consent_cookie(fake_youtube: FakeYouTube, api: YouTubeTranscriptApi) -> None:
    fake_youtube.script(Behavior.CONSENT, video_id=VIDEO)

    assert len(api.fetch(VIDEO)) > 0
    assert [o for _, o in outcomes(fake_youtube)] == ["consent", "ok", "ok", "ok"]


def test_sample_videos_are_distinct_well_formed_and_deterministic() -> None:
    videos = sample_videos(50)
    assert len({v.video_id for v in videos}) == 50
    assert all(len(v.video_id) == 11 for v in videos)
    assert [v.video_id for v in sample_videos(50)] == [v.video_id for v in videos]
    assert generate_snippets(VIDEO) == generate_snippets(VIDEO)
    assert generate_snippets(VIDEO) != generate_snippets(OTHER)


# --- the exception matrix -----------------------------------------------------------------

MATRIX = [
    (Behavior.RECAPTCHA, IpBlocked, ["recaptcha"]),
    (Behavior.RATE_LIMITED_WATCH, IpBlocked, ["429"]),
    (Behavior.RATE_LIMITED_PLAYER, IpBlocked, ["ok", "429"]),
    (Behavior.RATE_LIMITED_TIMEDTEXT, IpBlocked, ["ok", "ok", "429"]),
    (Behavior.BOT_CHECK, RequestBlocked, ["ok", "bot-check"]),
    (Behavior.AGE_RESTRICTED, AgeRestricted, ["ok", "age-restricted"]),
    (Behavior.UNAVAILABLE, VideoUnavailable, ["ok", "unavailable"]),
    (Behavior.UNPLAYABLE, VideoUnplayable, ["ok", "unplayable"]),
    (Behavior.TRANSCRIPTS_DISABLED, TranscriptsDisabled, ["ok", "transcripts-disabled"]),
    (Behavior.LANGUAGE_MISSING, NoTranscriptFound, ["ok", "language-missing"]),
    (Behavior.PO_TOKEN, PoTokenRequired, ["ok", "po-token"]),
    (Behavior.EMPTY_TIMEDTEXT, ParseError, ["ok", "ok", "empty"]),
    (Behavior.SERVER_ERROR, YouTubeRequestFailed, ["500"]),
]


@pytest.mark.parametrize(("behavior", "error", "served"), MATRIX, ids=[row[0].name for row in MATRIX])
def test_scripted_failure_raises_what_the_library_raises_for_youtube(
    fake_youtube: FakeYouTube,
    api: YouTubeTranscriptApi,
    behavior: Behavior,
    error: type[Exception],
    served: list[str],
) -> None:
    fake_youtube.script(behavior, video_id=VIDEO)

    with pytest.raises(error) as raised:
        api.fetch(VIDEO)

    assert type(raised.value) is error
    assert [o for _, o in outcomes(fake_youtube)] == served


def test_unplayable_carries_the_scripted_reason_and_subreasons(
    fake_youtube: FakeYouTube, api: YouTubeTranscriptApi
) -> None:
    fake_youtube.script(Behavior.UNPLAYABLE, video_id=VIDEO, reason="Private video", subreasons=("Sign in", "!"))
    with pytest.raises(VideoUnplayable) as raised:
        api.fetch(VIDEO)
    assert "Private video" in str(raised.value)
    assert "Sign in" in str(raised.value)


def test_language_missing_offers_only_german(fake_youtube: FakeYouTube, api: YouTubeTranscriptApi) -> None:
    fake_youtube.script(Behavior.LANGUAGE_MISSING, video_id=VIDEO)
    with pytest.raises(NoTranscriptFound):
        api.fetch(VIDEO, languages=["en"])
    assert api.fetch(VIDEO, languages=["de"])[0].text.startswith("[de] ")


@pytest.mark.parametrize(
    ("video_id", "error"),
    [("tooShort", VideoUnavailable), (f"https://youtu.be/{VIDEO}", InvalidVideoId)],
)
def test_malformed_ids_are_unavailable_like_on_youtube(
    fake_youtube: FakeYouTube, api: YouTubeTranscriptApi, video_id: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        api.fetch(video_id)


# --- scripting: targets, counts, precedence ------------------------------------------------


def test_times_applies_n_times_then_reverts(fake_youtube: FakeYouTube, session: requests.Session) -> None:
    script = fake_youtube.script(Behavior.BOT_CHECK, video_id=VIDEO, times=2)
    for _ in range(2):
        with pytest.raises(RequestBlocked):
            YouTubeTranscriptApi(http_client=session).fetch(VIDEO)
    assert script.times == 0
    assert len(YouTubeTranscriptApi(http_client=session).fetch(VIDEO)) > 0


def test_scripts_target_videos_and_exits(fake_youtube: FakeYouTube) -> None:
    fake_youtube.block_exit("127.0.0.12")
    fake_youtube.script(Behavior.TRANSCRIPTS_DISABLED, video_id=OTHER)
    blocked = direct_session(fake_youtube, source_ip="127.0.0.12")
    clean = direct_session(fake_youtube, source_ip="127.0.0.13")
    with blocked, clean:
        with pytest.raises(IpBlocked):
            YouTubeTranscriptApi(http_client=blocked).fetch(VIDEO)
        assert len(YouTubeTranscriptApi(http_client=clean).fetch(VIDEO)) > 0
        with pytest.raises(TranscriptsDisabled):
            YouTubeTranscriptApi(http_client=clean).fetch(OTHER)

    assert fake_youtube.exits_seen(VIDEO) == ["127.0.0.12", "127.0.0.13"]
    assert [e.outcome for e in fake_youtube.served(client_ip="127.0.0.12")] == ["recaptcha"]


def test_newest_matching_script_decides_and_reset_clears(fake_youtube: FakeYouTube, api: YouTubeTranscriptApi) -> None:
    fake_youtube.block_exit("127.0.0.1")
    fake_youtube.script(Behavior.OK, video_id=VIDEO)
    assert len(api.fetch(VIDEO)) > 0
    with pytest.raises(IpBlocked):
        api.fetch(OTHER)

    fake_youtube.reset()
    assert fake_youtube.requests == []
    assert len(api.fetch(OTHER)) > 0


def test_script_rejects_nonsense_counts(fake_youtube: FakeYouTube) -> None:
    with pytest.raises(ValueError):
        fake_youtube.script(Behavior.SLOW, times=0)
    with pytest.raises(ValueError):
        fake_youtube.script(Behavior.SLOW, delay=-1)


# --- timing: slow, latency, stall, stop ---------------------------------------------------
# Proved by what the server did (each request's arrival and reply in its log, threads that ended),
# never by how long the test took.


def held_back(entry: LoggedRequest) -> float:
    """Seconds from a request's arrival to its written reply, on the server's side."""
    assert entry.answered is not None, f"{entry.path} was never answered"
    return entry.answered - entry.time


def peak_concurrency(entries: list[LoggedRequest]) -> int:
    """The most requests that were in progress on the server at one moment."""
    edges = sorted(
        [(held.time, 1) for held in entries] + [(held.answered or float("inf"), -1) for held in entries]
    )  # at a tie the end sorts first: touching intervals do not overlap
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_slow_delays_every_request(fake_youtube: FakeYouTube, api: YouTubeTranscriptApi) -> None:
    fake_youtube.script(Behavior.SLOW, video_id=VIDEO, delay=0.3)
    api.fetch(VIDEO)
    assert [o for _, o in outcomes(fake_youtube)] == ["slow"] * 3
    assert all(held_back(entry) >= 0.3 for entry in fake_youtube.requests)


def test_latency_is_spread_over_a_videos_three_requests() -> None:
    with FakeYouTube(port=0, latency=0.6) as fake, direct_session(fake) as session:
        YouTubeTranscriptApi(http_client=session).fetch(VIDEO)
        logged = fake.requests
    assert [entry.path for entry in logged] == ["/watch", "/youtubei/v1/player", "/api/timedtext"]
    assert all(held_back(entry) >= 0.6 / 3 for entry in logged)


def test_parallel_fetches_are_served_concurrently() -> None:
    videos = sample_videos(8)
    results: dict[str, int] = {}

    def fetch(fake: FakeYouTube, video_id: str) -> None:
        with direct_session(fake) as session:
            results[video_id] = len(YouTubeTranscriptApi(http_client=session).fetch(video_id))

    with FakeYouTube(port=0, latency=0.6) as fake:
        threads = [threading.Thread(target=fetch, args=(fake, v.video_id)) for v in videos]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        logged = fake.requests
    assert not any(thread.is_alive() for thread in threads), "a fetch never ended"

    assert results == {v.video_id: len(v.snippets()) for v in videos}
    assert len(logged) == 3 * 8 and all(entry.answered is not None for entry in logged)
    # A server answering one request at a time never holds two at once.
    assert peak_concurrency(logged) >= 2


def test_stall_is_bounded_by_the_clients_timeout(fake_youtube: FakeYouTube) -> None:
    fake_youtube.script(Behavior.STALL, video_id=VIDEO)
    with direct_session(fake_youtube, timeout=0.5) as session, pytest.raises(requests.exceptions.ReadTimeout):
        YouTubeTranscriptApi(http_client=session).fetch(VIDEO)
    assert outcomes(fake_youtube) == [("/watch", "stall")]
    assert fake_youtube.requests[0].answered is None  # the client gave up: nothing was sent


def test_stop_ends_stalled_and_idle_connections_quickly() -> None:
    threads_before = set(threading.enumerate())
    fake = FakeYouTube(port=0).start()
    errors: list[BaseException] = []
    idle = direct_session(fake)
    stalled = direct_session(fake, timeout=60.0)  # far beyond the bounded waits below
    try:
        idle.get("https://www.youtube.com/oembed?url=https://youtu.be/" + VIDEO)  # stays pooled
        fake.script(Behavior.STALL)

        def fetch() -> None:
            try:
                stalled.get(f"https://www.youtube.com/watch?v={VIDEO}")
            except requests.RequestException as error:
                errors.append(error)

        client = threading.Thread(target=fetch)
        client.start()
        deadline = time.monotonic() + 5
        while not fake.served(video_id=VIDEO)[1:] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.requests[-1].outcome == "stall", "the stalled request never arrived"
        connections = [
            thread for thread in threading.enumerate()
            if thread not in threads_before and thread.name.startswith("fake-youtube 127.")
        ]  # fmt: skip
        assert len(connections) == 2  # the idle one and the stalled one

        fake.stop()  # waits for its connection threads, but only 5 s: it must cut them
        assert not any(thread.is_alive() for thread in connections)
        client.join(5)
        assert not client.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], requests.ConnectionError)
        assert fake.requests[-1].answered is None
    finally:
        fake.stop()
        idle.close()
        stalled.close()


# --- transport and side endpoints -----------------------------------------------------------


def test_keep_alive_by_default_and_connection_close_when_asked(
    fake_youtube: FakeYouTube, session: requests.Session
) -> None:
    url = f"https://www.youtube.com/watch?v={VIDEO}"
    kept = [session.get(url) for _ in range(2)]
    assert all("Connection" not in r.headers for r in kept)
    closed = [session.get(url, headers={"Connection": "close"}) for _ in range(2)]
    assert all(r.headers["Connection"] == "close" for r in closed)
    adapter = session.get_adapter(url)
    assert isinstance(adapter, LoopbackAdapter) and adapter.connections == 2


def test_player_checks_key_client_and_body_like_youtube(fake_youtube: FakeYouTube, session: requests.Session) -> None:
    url = "https://www.youtube.com/youtubei/v1/player?key="
    android = {"context": {"client": {"clientName": "ANDROID"}}, "videoId": VIDEO}
    web = {"context": {"client": {"clientName": "WEB"}}, "videoId": VIDEO}
    assert session.post(url + "wrong", json=android).status_code == 400
    assert session.post(url + API_KEY, json=web).status_code == 400
    assert session.post(url + API_KEY, data=b"{").status_code == 400
    ok = session.post(url + API_KEY, json=android).json()
    assert ok["playabilityStatus"]["status"] == "OK"
    assert [o for _, o in outcomes(fake_youtube)] == ["bad-key", "bad-request", "bad-request", "ok"]


def test_oembed_answers_like_youtube(fake_youtube: FakeYouTube, session: requests.Session) -> None:
    oembed = "https://www.youtube.com/oembed"
    watch = f"https://www.youtube.com/watch?v={VIDEO}"
    body = session.get(oembed, params={"url": watch, "format": "json"}).json()
    video = fake_youtube.video(VIDEO)
    assert (body["title"], body["author_name"], body["provider_name"]) == (video.title, video.channel, "YouTube")

    fake_youtube.script(Behavior.UNAVAILABLE, video_id=VIDEO)
    assert session.get(oembed, params={"url": watch, "format": "json"}).status_code == 404
    assert session.get(oembed, params={"url": "https://example.com/"}).status_code == 400


def test_visitor_cookie_shows_a_reused_session(
    fake_youtube: FakeYouTube, session: requests.Session, api: YouTubeTranscriptApi
) -> None:
    api.fetch(VIDEO)
    api.fetch(OTHER)
    first, second = fake_youtube.served(video_id=VIDEO), fake_youtube.served(video_id=OTHER)
    assert first[0].visitor is None
    assert first[1].visitor is not None
    assert {e.visitor for e in second} == {first[1].visitor}


def test_tor_check_echoes_the_client_ip(fake_youtube: FakeYouTube) -> None:
    with direct_session(fake_youtube, source_ip="127.0.0.17") as session:
        answer = session.get("https://check.torproject.org/api/ip").json()
        missing = session.get("https://check.torproject.org/watch?v=" + VIDEO)
    assert answer == {"IsTor": True, "IP": "127.0.0.17"}
    assert missing.status_code == 404


# --- through the private Tor network ------------------------------------------------------


@pytest.mark.lab
def test_through_the_lab_the_log_sees_the_exit(lab: TorLab, fake_youtube: FakeYouTube) -> None:
    proxy = f"socks5h://fake-youtube-test:x@127.0.0.1:{lab.endpoint.socks_port}"
    with fake_session(fake_youtube) as session:
        session.proxies = {"https": proxy}
        api = YouTubeTranscriptApi(http_client=session)

        fetched = api.fetch(VIDEO)
        assert [Snippet(s.text, s.start, s.duration) for s in fetched] == (fake_youtube.video(VIDEO).snippets("en"))
        exits = fake_youtube.exits_seen(VIDEO)
        assert len(exits) == 1 and exits[0] in lab.exit_ips
        # A new connection (another host) may leave from another exit even with the same
        # credentials (conflux): the echo must match what the server saw for that request.
        echoed = session.get("https://check.torproject.org/api/ip", timeout=30).json()
        echo_seen_from = [entry.client_ip for entry in fake_youtube.requests if entry.path == "/api/ip"]
        assert echoed == {"IsTor": True, "IP": echo_seen_from[-1]}
        assert echoed["IP"] in lab.exit_ips

        for ip in lab.exit_ips:  # whichever exit the next fetch leaves from is blocked
            fake_youtube.block_exit(ip)
        with pytest.raises(IpBlocked):
            api.fetch(OTHER)
    assert fake_youtube.served(video_id=OTHER)[-1].outcome == "recaptcha"
    assert set(fake_youtube.exits_seen(OTHER)) <= set(lab.exit_ips)
