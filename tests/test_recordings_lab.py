"""The fake YouTube held against answers recorded from real YouTube (youtube-transcript-api's sdist
test assets, cached by ``yt_study_buddy.testing.recordings``; test.sh fetches them before it
enters the network jail).

The fake replays them byte for byte; the product, through the lab, gets the real transcript text,
title, channel, length and description from them without the oEmbed request, and every recorded
error is classified exactly as the fake's synthetic variant of it.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import replace

import pytest
import yaml

from tests.test_cli_lab import Run
from tests.test_fake_youtube import direct_session
from yt_study_buddy.app._fetcher import TorTranscriptFetcher
from yt_study_buddy.notes._formatters import BEFORE_CHAPTERS
from yt_study_buddy.testing import recordings
from yt_study_buddy.testing.fake_youtube import Behavior, FakeYouTube
from yt_study_buddy.testing.fake_youtube._pages import API_KEY
from yt_study_buddy.testing.recordings import RECORDED_ERRORS, RecordedError, Recordings
from yt_study_buddy.tor._client import RotatingTorClient
from yt_study_buddy.youtube._chapters import Chapter
from yt_study_buddy.youtube._failures import FetchFailure
from yt_study_buddy.youtube._transcripts import Snippet, Transcript

#: The playable recording (Surface Go review, 9 tracks) and the English-only one.
RECORDED = "GJLlxj_dtq8"
ENGLISH_ONLY = "F1xioXWb8CY"
#: transcript.xml.static as the library parses it: entities decoded, <i> stripped, the empty
#: cue dropped.
RECORDED_SNIPPETS = (
    Snippet("Hey, this is just a test", 0.0, 1.54),
    Snippet("this is not the original transcript", 1.54, 4.16),
    Snippet("just something shorter, I made up for testing", 5.7, 3.239),
)
THREE_REQUESTS = ["/watch", "/youtubei/v1/player", "/api/timedtext"]
#: The recorded page's key moments (YouTube's automatic chapters), as its player shows them; it
#: has no player-bar chapters and no timestamps in its description.
RECORDED_CHAPTERS = (
    Chapter("Build Quality", 39),
    Chapter("Screen", 66),
    Chapter("Pen Support", 106),
    Chapter("Webcam", 129),
    Chapter("Keyboard", 155),
    Chapter("Trackpad", 188),
    Chapter("Performance", 199),
    Chapter("Battery Life", 220),
    Chapter("Gaming Performance", 236),
    Chapter("Ports", 254),
)


@pytest.fixture(scope="session")
def cached() -> Recordings:
    """The cached recordings. Missing: a skip on a developer's machine, a failure on CI."""
    try:
        return recordings.load()
    except recordings.RecordingsMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the recordings: {missing}")
        pytest.skip(str(missing))


@pytest.fixture
def fake(fake_youtube: FakeYouTube, cached: Recordings) -> FakeYouTube:
    """The fake with both recorded videos registered (idempotent on the session's server)."""
    fake_youtube.add_recording(cached.video())
    fake_youtube.add_recording(cached.english_only_video())
    return fake_youtube


@pytest.fixture
def client(lab, fake, tmp_path) -> Iterator[RotatingTorClient]:
    """A client on the lab with a fresh ledger: each test has all 12 exits."""
    with RotatingTorClient(
        endpoint=lab.endpoint, ca_bundle=str(fake.ca_path), ledger_path=tmp_path / "ledger.sqlite3"
    ) as running:
        yield running


def fetch(client: RotatingTorClient, video_id: str, languages: tuple[str, ...] = ("en",)) -> Transcript:
    """One video through the product's fetcher, on a fresh exit."""
    with client.session() as session:
        return TorTranscriptFetcher(session=session).fetch_transcript(video_id, languages)


def outcome(client: RotatingTorClient, video_id: str, languages: tuple[str, ...]) -> tuple[str, str]:
    """(kind, reason) of the failed fetch, or ("fetched", language code)."""
    try:
        transcript = fetch(client, video_id, languages)
    except FetchFailure as failure:
        return failure.kind.value, failure.reason
    return "fetched", transcript.language_code


def paths(fake: FakeYouTube, video_id: str) -> list[str]:
    return [entry.path for entry in fake.served(video_id=video_id)]


# --- the cache ------------------------------------------------------------------------------


def test_only_the_assets_are_extracted_under_their_bare_names(tmp_path) -> None:
    members = {
        "youtube_transcript_api-9.9/youtube_transcript_api/test/assets/youtube.html.static": b"page",
        "youtube_transcript_api-9.9/youtube_transcript_api/test/assets/youtube.innertube.json.static": b"{}",
        "youtube_transcript_api-9.9/youtube_transcript_api/test/assets/transcript.xml.static": b"<x/>",
        "youtube_transcript_api-9.9/youtube_transcript_api/test/assets/__init__.py": b"",
        "youtube_transcript_api-9.9/youtube_transcript_api/_api.py": b"code",
        "youtube_transcript_api-9.9/youtube_transcript_api/test/assets/../../evil.static": b"no",
    }
    archive = tmp_path / "sdist.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    into = tmp_path / "assets"
    into.mkdir()
    recordings._extract_assets(archive, into)
    assert {p.name: p.read_bytes() for p in into.iterdir()} == {
        "youtube.html.static": b"page",
        "youtube.innertube.json.static": b"{}",
        "transcript.xml.static": b"<x/>",
    }
    assert not (tmp_path / "evil.static").exists()


def test_a_missing_cache_says_how_to_fetch_it() -> None:
    with pytest.raises(recordings.RecordingsMissing, match=r"-m yt_study_buddy\.testing\.recordings fetch"):
        recordings.load("0.0.0-never-released")


# --- the fake replays the recordings (no Tor: the loopback adapter) -----------------------


def test_recorded_video_is_served_byte_for_byte(fake: FakeYouTube, cached: Recordings) -> None:
    with direct_session(fake) as session:
        watch = session.get(f"https://www.youtube.com/watch?v={RECORDED}")
        key = cached.video().api_key
        player = session.post(
            f"https://www.youtube.com/youtubei/v1/player?key={key}",
            json={"context": {"client": {"clientName": "ANDROID"}}, "videoId": RECORDED},
        )
        tracks = player.json()["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"]
        timedtext = session.get(tracks[0]["baseUrl"])  # the recorded URL, unchanged
    assert watch.content == cached.read(recordings.WATCH_PAGE)
    assert player.content == cached.read(recordings.PLAYER)
    assert timedtext.content == cached.read(recordings.TIMEDTEXT)
    assert key is not None and key != API_KEY  # the fake accepts the recorded page's own key
    assert len(tracks) == 9 and [e.video_id for e in fake.requests] == [RECORDED] * 3


def test_synthetic_video_details_have_the_recorded_shape(fake: FakeYouTube, cached: Recordings) -> None:
    recorded = cached.player()["videoDetails"]
    with direct_session(fake) as session:
        answer = session.post(
            f"https://www.youtube.com/youtubei/v1/player?key={API_KEY}",
            json={"context": {"client": {"clientName": "ANDROID"}}, "videoId": "abcdefghijk"},
        )
    synthetic = answer.json()["videoDetails"]
    assert isinstance(recorded, dict) and set(synthetic) == set(recorded)
    assert {k: type(v) for k, v in synthetic.items()} == {k: type(v) for k, v in recorded.items()}
    video = fake.video("abcdefghijk")
    assert (synthetic["title"], synthetic["author"]) == (video.title, video.channel)
    assert synthetic["lengthSeconds"] == str(video.length) and synthetic["shortDescription"] == video.description


@pytest.mark.parametrize(
    "error",
    [e for e in RECORDED_ERRORS if e.asset.endswith(".innertube.json.static")],
    ids=lambda e: e.asset.removesuffix(".innertube.json.static"),
)
def test_synthetic_player_errors_say_what_the_recorded_ones_say(
    fake: FakeYouTube, cached: Recordings, error: RecordedError
) -> None:
    """Status and reason of the playability verdict; captions only where the recording has them."""
    with direct_session(fake) as session:
        fake.script(error.behavior, video_id="abcdefghijk")
        answer = session.post(
            f"https://www.youtube.com/youtubei/v1/player?key={API_KEY}",
            json={"context": {"client": {"clientName": "ANDROID"}}, "videoId": "abcdefghijk"},
        )
    synthetic, recorded = answer.json(), cached.player(error.asset)
    verdict: tuple[str, ...] = ("status", "reason")
    if error.behavior is Behavior.UNPLAYABLE:  # recorded with a made-up status and reason
        verdict = ()
    assert {k: synthetic["playabilityStatus"].get(k) for k in verdict} == {
        k: recorded["playabilityStatus"].get(k)  # type: ignore[attr-defined]
        for k in verdict
    }
    assert ("captions" in synthetic) == ("captions" in recorded)
    if error.behavior is Behavior.BOT_CHECK:

        def subreasons(answer: dict) -> list[str]:
            runs = answer["playabilityStatus"]["errorScreen"]["playerErrorMessageRenderer"]["subreason"]["runs"]
            return [run["text"] for run in runs]

        assert subreasons(synthetic) == subreasons(recorded)


# --- through the lab and the product ------------------------------------------------------


@pytest.mark.lab
def test_recorded_video_gives_real_text_and_details_in_three_requests(
    client, fake: FakeYouTube, cached: Recordings
) -> None:
    transcript = fetch(client, RECORDED, ("ja", "de", "en"))  # the recording offers ja first

    assert transcript.snippets == RECORDED_SNIPPETS  # real text, formatting tags stripped
    assert (transcript.language_code, transcript.language, transcript.is_generated) == ("ja", "Japanese", False)
    assert (transcript.title, transcript.channel) == ("Surface Go Review - It\u2019s Awesome", "Dave2D")
    assert transcript.video_duration == 316 and transcript.duration == 316.0  # not the cues' 8.9 s
    assert transcript.description == cached.video().description.strip()
    assert transcript.description.startswith("Dave2D review of the Microsoft Surface Go. This is the best")
    assert transcript.chapters == RECORDED_CHAPTERS  # the page's key moments
    assert paths(fake, RECORDED) == THREE_REQUESTS  # no oEmbed


@pytest.mark.lab
def test_language_priority_picks_what_each_recording_offers(client, fake: FakeYouTube) -> None:
    assert fetch(client, RECORDED, ("de", "en")).language_code == "de"
    english = fetch(client, ENGLISH_ONLY, ("de", "en"))
    assert (english.language_code, english.is_generated) == ("en", False)  # manual before generated
    assert (english.title, english.channel) == (
        "The Tide Is Turning - Russian Civil War Fall 1919 I THE GREAT WAR 1919",
        "The Great War",
    )
    assert english.video_duration == 1509
    assert paths(fake, ENGLISH_ONLY) == THREE_REQUESTS
    assert outcome(client, ENGLISH_ONLY, ("de", "fr")) == ("permanent", "no_transcript")


@pytest.mark.lab
def test_synthetic_video_also_needs_no_oembed(client, fake: FakeYouTube) -> None:
    transcript = fetch(client, "abcdefghijk")
    video = fake.video("abcdefghijk")
    assert (transcript.title, transcript.channel) == (video.title, video.channel)
    assert transcript.video_duration == video.length and transcript.description == video.description
    assert paths(fake, "abcdefghijk") == THREE_REQUESTS


@pytest.fixture
def without_player_details(fake: FakeYouTube, cached: Recordings) -> Iterator[None]:
    """Both recordings served with player answers that lack videoDetails; restored after."""
    for video in (cached.video(), cached.english_only_video()):
        answer = json.loads(video.player)
        del answer["videoDetails"]
        fake.add_recording(replace(video, player=json.dumps(answer).encode()))
    yield
    fake.add_recording(cached.video())
    fake.add_recording(cached.english_only_video())


@pytest.mark.lab
@pytest.mark.usefixtures("without_player_details")
def test_details_fall_back_to_the_watch_page_then_to_oembed(client, fake: FakeYouTube) -> None:
    from_page = fetch(client, RECORDED)  # the recorded page's ytInitialPlayerResponse
    assert (from_page.title, from_page.channel, from_page.video_duration) == (
        "Surface Go Review - It\u2019s Awesome",
        "Dave2D",
        316,
    )
    assert paths(fake, RECORDED) == THREE_REQUESTS

    from_oembed = fetch(client, ENGLISH_ONLY)  # no recorded page: the fake's has no details
    assert from_oembed.title == "The Tide Is Turning - Russian Civil War Fall 1919 I THE GREAT WAR 1919"
    assert from_oembed.channel == "The Great War" and from_oembed.video_duration is None
    assert paths(fake, ENGLISH_ONLY) == [*THREE_REQUESTS, "/oembed"]


#: What each recorded error must be classified as (the synthetic variant must agree).
EXPECTED = {
    Behavior.BOT_CHECK: ("blocked", "bot_check"),
    Behavior.AGE_RESTRICTED: ("permanent", "age_restricted"),
    Behavior.UNAVAILABLE: ("permanent", "video_unavailable"),
    Behavior.UNPLAYABLE: ("permanent", "unplayable"),
    Behavior.TRANSCRIPTS_DISABLED: ("permanent", "transcripts_disabled"),
    Behavior.PO_TOKEN: ("permanent", "po_token_required"),
    Behavior.RECAPTCHA: ("blocked", "recaptcha"),
    Behavior.RATE_LIMITED_WATCH: ("blocked", "too_many_requests"),
    Behavior.RATE_LIMITED_TIMEDTEXT: ("blocked", "too_many_requests"),
    Behavior.CONSENT: ("fetched", "en"),  # the wall is passed, with the recorded form's value
}


@pytest.mark.lab
@pytest.mark.parametrize(
    "index", range(len(RECORDED_ERRORS)), ids=[f"{e.asset.split('.')[0]}-{e.behavior.name}" for e in RECORDED_ERRORS]
)
def test_recorded_error_is_classified_like_its_synthetic_variant(
    client, fake: FakeYouTube, cached: Recordings, index: int
) -> None:
    error = RECORDED_ERRORS[index]
    synthetic_id, recorded_id = f"synth{index:02d}xxxx", f"recrd{index:02d}xxxx"
    fake.script(error.behavior, video_id=synthetic_id)
    fake.script(error.behavior, video_id=recorded_id, body=cached.read(error.asset))

    synthetic = outcome(client, synthetic_id, error.languages)
    recorded = outcome(client, recorded_id, error.languages)

    assert recorded == synthetic == EXPECTED[error.behavior]
    acted = [e.size for e in fake.served(video_id=recorded_id) if e.outcome == error.behavior.outcome]
    assert acted == [len(cached.read(error.asset))]  # the fetch got the recorded answer


@pytest.mark.lab
def test_recorded_invalid_consent_wall_is_retryable(client, fake: FakeYouTube, cached: Recordings) -> None:
    """No synthetic variant: a wall without the form's value cannot be passed."""
    fake.script(Behavior.CONSENT, video_id="badconsentx", body=cached.read("youtube_consent_page_invalid.html.static"))
    assert outcome(client, "badconsentx", ("en",)) == ("retryable", "consent")
    assert paths(fake, "badconsentx") == ["/watch"]


@pytest.mark.lab
def test_cli_note_from_the_recording(lab, fake: FakeYouTube, tmp_path) -> None:
    run = Run(tmp_path, fake)
    done = run("--lang", "de", "--lang", "en", f"https://youtu.be/{RECORDED}")
    assert done.returncode == 0, done.stderr
    text = run.notes()[RECORDED].read_text()
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    fields = yaml.safe_load(head)
    assert {k: v for k, v in fields.items() if k not in ("chapters", "fetched")} == {
        "title": "Surface Go Review - It\u2019s Awesome",
        "channel": "Dave2D",
        "url": f"https://www.youtube.com/watch?v={RECORDED}",
        "video_id": RECORDED,
        "duration": 316,
        "language": "de",
    }
    assert fields["chapters"] == [{"title": c.title, "start": int(c.start)} for c in RECORDED_CHAPTERS]
    assert body.startswith("\n# Surface Go Review - It\u2019s Awesome\n")
    assert "- **Channel:** Dave2D\n" in body and "- **Language:** German (de), manual\n" in body
    assert "- **Duration:** 05:16\n" in body
    assert f"- [04:14](https://www.youtube.com/watch?v={RECORDED}&t=254s) Ports\n" in body
    headings = re.findall(r"^## (.*)$", body, re.M)
    assert headings == ["Chapters", BEFORE_CHAPTERS, *(c.title for c in RECORDED_CHAPTERS)]
    # The recorded cues end at 8.9 s: all before the first chapter (0:39); its sections are empty.
    before = body.split(f"## {BEFORE_CHAPTERS}\n", 1)[1].split("\n## ", 1)[0]
    assert "Hey, this is just a test this is not the original transcript just something shorter" in before
    assert paths(fake, RECORDED) == THREE_REQUESTS
