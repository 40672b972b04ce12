"""The fake YouTube's transport and block realism: gzip and chunked answers like YouTube's, the
recaptcha block as a redirect to www.google.com/sorry (429), and a per-exit rate limit; each
checked on the wire, against the real youtube-transcript-api, and (lab tests) through the
product's real fetch path over the private Tor network.

Like test_fake_youtube.py this needs netjail (port 443, 127.0.0.x sources): run it inside it.
"""

from __future__ import annotations

import gzip
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from youtube_transcript_api import IpBlocked, YouTubeTranscriptApi

from tests.test_fake_youtube import VIDEO, direct_session
from yt_study_buddy import FailureKind, RotatingTorClient, TorTranscriptFetcher
from yt_study_buddy.testing import TorLab
from yt_study_buddy.testing.fake_youtube import Behavior, FakeYouTube, LoggedRequest, RateLimit
from yt_study_buddy.testing.fake_youtube._pages import sample_videos, watch_page
from yt_study_buddy.youtube import Snippet
from yt_study_buddy.youtube._failures import classify_failure

EXIT_A, EXIT_B = "127.0.0.21", "127.0.0.22"


def raw_get(
    fake: FakeYouTube, path: str, *, host: str = "www.youtube.com", accept: str | None = "gzip"
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET over TLS by hand: status, headers (lower-case names), raw body bytes."""
    context = ssl.create_default_context(cafile=str(fake.ca_path))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if accept is not None:
        lines.append(f"Accept-Encoding: {accept}")
    with socket.create_connection((fake.host, fake.port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while received := tls.recv(65536):
                data += received
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def dechunk(body: bytes) -> list[bytes]:
    """The chunks of a chunked body; fails on any framing error."""
    chunks = []
    while True:
        size_line, separator, rest = body.partition(b"\r\n")
        assert separator, "unterminated chunk size line"
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n", "bad last chunk"
            return chunks
        assert rest[size : size + 2] == b"\r\n", "chunk not followed by CRLF"
        chunks.append(rest[:size])
        body = rest[size + 2 :]


def how_sent(entries: list[LoggedRequest]) -> set[tuple[str | None, bool]]:
    return {(entry.content_encoding, entry.chunked) for entry in entries}


class Clock:
    """An injectable clock for the rate limit: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- gzip and chunked ---------------------------------------------------------------------


def test_answers_go_out_gzipped_and_chunked_on_the_wire(fake_youtube: FakeYouTube) -> None:
    status, headers, body = raw_get(fake_youtube, f"/watch?v={VIDEO}", accept="gzip, deflate")

    assert status == 200
    assert headers["content-encoding"] == "gzip" and headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    chunks = dechunk(body)
    assert len(chunks) > 1
    assert gzip.decompress(b"".join(chunks)).decode() == watch_page(fake_youtube.video(VIDEO))
    assert how_sent(fake_youtube.requests) == {("gzip", True)}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [(None, None), ("identity", None), ("gzip;q=0, deflate", None), ("deflate;q=0.5, *", "gzip")],
)
def test_gzip_only_for_clients_that_accept_it(
    fake_youtube: FakeYouTube, accept: str | None, expected: str | None
) -> None:
    _, headers, body = raw_get(fake_youtube, f"/watch?v={VIDEO}", accept=accept)

    assert headers.get("content-encoding") == expected
    data = b"".join(dechunk(body))
    page = gzip.decompress(data) if expected else data
    assert page.decode() == watch_page(fake_youtube.video(VIDEO))


def test_gzip_and_chunking_can_be_turned_off() -> None:
    with FakeYouTube(port=0, gzip=False, chunked=False) as fake:
        _, headers, body = raw_get(fake, f"/watch?v={VIDEO}")
        assert "content-encoding" not in headers and "transfer-encoding" not in headers
        assert int(headers["content-length"]) == len(body)
        assert body.decode() == watch_page(fake.video(VIDEO))
        with direct_session(fake) as session:
            assert len(YouTubeTranscriptApi(http_client=session).fetch(VIDEO)) > 0
        assert how_sent(fake.requests) == {(None, False)}


def test_the_library_parses_every_step_through_gzip_and_chunks(fake_youtube: FakeYouTube) -> None:
    fake_youtube.script(Behavior.CONSENT, video_id=VIDEO)
    with direct_session(fake_youtube) as session:
        french = YouTubeTranscriptApi(http_client=session).list(VIDEO).find_transcript(["en"])
        fetched = french.translate("fr").fetch()
        oembed = session.get(f"https://www.youtube.com/oembed?url=https://youtu.be/{VIDEO}&format=json").json()

    expected = fake_youtube.video(VIDEO).snippets("en", translate_to="fr")
    assert [Snippet(s.text, s.start, s.duration) for s in fetched] == expected
    assert oembed["title"] == fake_youtube.video(VIDEO).title
    assert [entry.outcome for entry in fake_youtube.requests] == ["consent", "ok", "ok", "ok", "ok"]
    assert how_sent(fake_youtube.requests) == {("gzip", True)}


# --- the block as a redirect to google.com/sorry ------------------------------------------


def test_redirect_block_goes_to_google_sorry_and_is_an_exit_block(
    fake_youtube: FakeYouTube,
) -> None:
    fake_youtube.script(Behavior.RECAPTCHA_REDIRECT, video_id=VIDEO)
    status, headers, _ = raw_get(fake_youtube, f"/watch?v={VIDEO}")
    assert status == 302
    continue_to = f"https://www.youtube.com/watch%3Fv%3D{VIDEO}"
    assert headers["location"].startswith(f"https://www.google.com/sorry/index?continue={continue_to}&q=")

    with direct_session(fake_youtube, source_ip=EXIT_A) as session, pytest.raises(IpBlocked) as raised:
        YouTubeTranscriptApi(http_client=session).fetch(VIDEO)
    failure = classify_failure(raised.value, VIDEO)
    assert (failure.kind, failure.reason) == (FailureKind.BLOCKED, "recaptcha")
    watch, sorry = fake_youtube.served(client_ip=EXIT_A)
    assert (watch.path, watch.outcome) == ("/watch", "recaptcha-redirect")
    assert (sorry.path, sorry.outcome, sorry.video_id) == ("/sorry/index", "sorry", VIDEO)


def test_google_serves_only_the_sorry_page(fake_youtube: FakeYouTube) -> None:
    status, _, body = raw_get(fake_youtube, f"/watch?v={VIDEO}", host="www.google.com", accept=None)
    assert status == 404
    status, _, body = raw_get(
        fake_youtube,
        "/sorry/index?continue=https://www.youtube.com/watch%3Fv%3DdQw4w9WgXcQ",
        host="google.com",
        accept=None,
    )
    assert status == 429
    page = b"".join(dechunk(body)).decode()
    assert 'class="g-recaptcha"' in page and "unusual traffic" in page


# --- per-exit rate limit --------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(clock: Clock) -> Iterator[FakeYouTube]:
    """A fake that blocks an exit asking for a third video within 60 s, for 30 s."""
    limit = RateLimit(videos=2, window=60, block=30)
    with FakeYouTube(port=0, rate_limit=limit, clock=clock) as fake:
        yield fake


def fetch_from(fake: FakeYouTube, source_ip: str, video_id: str) -> str:
    """Fetch a transcript from this "exit": "ok", or the classified failure's reason."""
    with direct_session(fake, source_ip=source_ip) as session:
        try:
            YouTubeTranscriptApi(http_client=session).fetch(video_id)
        except Exception as exc:
            failure = classify_failure(exc, video_id)
            assert failure.kind is FailureKind.BLOCKED
            return failure.reason
    return "ok"


def test_rate_limit_blocks_an_exit_past_k_videos_until_b_has_passed(limited: FakeYouTube, clock: Clock) -> None:
    v1, v2, v3 = (video.video_id for video in sample_videos(3, seed="rate"))
    assert fetch_from(limited, EXIT_A, v1) == "ok"
    clock.now += 10
    assert fetch_from(limited, EXIT_A, v2) == "ok"
    assert fetch_from(limited, EXIT_A, v1) == "ok"  # the same video again is not another one
    clock.now += 10
    assert fetch_from(limited, EXIT_A, v3) == "recaptcha"  # the third video within 60 s
    assert limited.rate_limited_until(EXIT_A) == clock.now + 30
    assert fetch_from(limited, EXIT_B, v3) == "ok"  # another exit is not blocked
    assert limited.rate_limited_until(EXIT_B) is None
    clock.now += 29
    assert fetch_from(limited, EXIT_A, v1) == "recaptcha"  # blocked for every video
    clock.now += 1
    assert fetch_from(limited, EXIT_A, v3) == "ok"  # B seconds later: served again
    assert limited.rate_limited_until(EXIT_A) is None

    blocked = [e for e in limited.requests if e.outcome == "recaptcha-redirect"]
    assert [(e.client_ip, e.video_id) for e in blocked] == [(EXIT_A, v3), (EXIT_A, v1)]
    assert all(e.client_ip == EXIT_A for e in limited.requests if e.path == "/sorry/index")


def test_rate_limit_window_slides_and_a_block_starts_a_fresh_one(limited: FakeYouTube, clock: Clock) -> None:
    v1, v2, v3, v4, v5 = (video.video_id for video in sample_videos(5, seed="window"))
    assert fetch_from(limited, EXIT_A, v1) == "ok"
    clock.now += 30
    assert fetch_from(limited, EXIT_A, v2) == "ok"
    clock.now += 30  # v1 left the window
    assert fetch_from(limited, EXIT_A, v3) == "ok"
    assert fetch_from(limited, EXIT_A, v4) == "recaptcha"  # v2 and v3 are within 60 s
    clock.now += 30
    assert fetch_from(limited, EXIT_A, v4) == "ok"  # counted afresh after the block
    assert fetch_from(limited, EXIT_A, v5) == "ok"


def test_rate_limit_answers_with_the_chosen_block_and_is_off_by_default(clock: Clock) -> None:
    limit = RateLimit(videos=1, window=60, block=30, behavior=Behavior.RATE_LIMITED_WATCH)
    with FakeYouTube(port=0, clock=clock) as fake:
        v1, v2 = (video.video_id for video in sample_videos(2, seed="choice"))
        assert [fetch_from(fake, EXIT_A, v) for v in (v1, v2, v1)] == ["ok"] * 3
        fake.set_rate_limit(limit)
        assert fetch_from(fake, EXIT_A, v1) == "ok"
        assert fetch_from(fake, EXIT_A, v2) == "too_many_requests"
        assert fake.requests[-1].outcome == "429"
        fake.reset()  # back to the constructor's: no limit
        assert fetch_from(fake, EXIT_A, v2) == "ok"


@pytest.mark.parametrize(
    "options",
    [
        {"videos": 0, "window": 60, "block": 30},
        {"videos": 2, "window": 0, "block": 30},
        {"videos": 2, "window": 60, "block": -1},
        {"videos": 2, "window": 60, "block": 30, "behavior": Behavior.OK},
    ],
)
def test_rate_limit_rejects_nonsense(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RateLimit(**options)  # type: ignore[arg-type]


# --- through the private Tor network, on the product's fetch path ---------------------------


@pytest.fixture
def client(lab: TorLab, fake_youtube: FakeYouTube, tmp_path: Path) -> Iterator[RotatingTorClient]:
    with RotatingTorClient(
        endpoint=lab.endpoint,
        ca_bundle=str(fake_youtube.ca_path),
        ledger_path=tmp_path / "ledger.sqlite3",
    ) as opened:
        yield opened


@pytest.mark.lab
def test_the_product_fetches_through_gzip_and_chunks_over_the_lab(
    client: RotatingTorClient, fake_youtube: FakeYouTube
) -> None:
    video_id = sample_videos(1, seed="lab-gzip")[0].video_id
    fetcher = TorTranscriptFetcher(client=client)

    transcript = fetcher.fetch_transcript(video_id)

    expected = fake_youtube.video(video_id)
    assert transcript.title == expected.title
    assert [(s.text, s.start, s.duration) for s in transcript.snippets] == [
        (s.text, s.start, s.duration) for s in expected.snippets("en")
    ]
    served = fake_youtube.served(video_id=video_id)
    paths = ["/watch", "/youtubei/v1/player", "/api/timedtext"]  # details come from the player answer
    assert [e.path for e in served] == paths
    assert how_sent(served) == {("gzip", True)}
    assert fetcher.attempts == 1 and {e.client_ip for e in served} == set(fetcher.exits_tried)


@pytest.mark.lab
def test_a_redirect_block_quarantines_the_exit_and_the_video_moves_on(
    client: RotatingTorClient, fake_youtube: FakeYouTube, lab: TorLab
) -> None:
    video_id = sample_videos(1, seed="lab-sorry")[0].video_id
    fake_youtube.script(Behavior.RECAPTCHA_REDIRECT, video_id=video_id, times=1)
    fetcher = TorTranscriptFetcher(client=client)

    transcript = fetcher.fetch_transcript(video_id)

    assert transcript.video_id == video_id and len(transcript.snippets) > 0
    assert fetcher.attempts == 2
    blocked_exit, good_exit = fetcher.exits_tried
    assert blocked_exit != good_exit and {blocked_exit, good_exit} <= set(lab.exit_ips)
    # The redirect was followed through the lab (google.com is mapped) from the blocked exit.
    sorry = [e for e in fake_youtube.served(video_id=video_id) if e.path == "/sorry/index"]
    assert [(e.client_ip, e.outcome) for e in sorry] == [(blocked_exit, "sorry")]
    state = client.ledger.state(blocked_exit)
    assert state is not None and state.quarantined_until is not None
    assert state.quarantined_until > datetime.now(UTC)
    history = client.ledger.history(exit_ip=blocked_exit)
    assert [r.detail for r in history if r.outcome == "quarantined"] == ["blocked:recaptcha"]
    good = client.ledger.state(good_exit)
    assert good is not None and good.quarantined_until is None
