"""Failure classification: unit-level with constructed exceptions, then through `fetch_transcript`
driven by an in-process requests adapter (canned answers, no sockets)."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import socks
import urllib3.exceptions
import youtube_transcript_api as yta
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from youtube_transcript_api._transcripts import TranscriptListFetcher, _raise_http_errors

from yt_study_buddy._exceptions import StudyBuddyError
from yt_study_buddy.youtube._failures import FailureKind, FetchFailure, classify_failure
from yt_study_buddy.youtube._transcripts import Snippet, fetch_transcript, fetch_video_info

ID = "dQw4w9WgXcQ"
BLOCKED, RETRYABLE, PERMANENT = FailureKind.BLOCKED, FailureKind.RETRYABLE, FailureKind.PERMANENT

CAPTIONS = {
    "captionTracks": [
        {
            "baseUrl": f"https://www.youtube.com/api/timedtext?v={ID}&lang=en",
            "name": {"runs": [{"text": "English"}]},
            "languageCode": "en",
            "isTranslatable": True,
        },
        {
            "baseUrl": f"https://www.youtube.com/api/timedtext?v={ID}&kind=asr&lang=de",
            "name": {"runs": [{"text": "German (auto-generated)"}]},
            "languageCode": "de",
            "kind": "asr",
        },
    ],
    "translationLanguages": [{"languageCode": "fr", "languageName": {"runs": [{"text": "French"}]}}],
}


def _response(status: int, body: str = "", url: str = "https://www.youtube.com/x") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {429: "Too Many Requests", 503: "Service Unavailable", 403: "Forbidden"}.get(status, "X")
    response.url = url
    response._content = body.encode()
    response.encoding = "utf-8"
    return response


def _http_error(status: int) -> requests.HTTPError:
    try:
        _response(status).raise_for_status()
    except requests.HTTPError as exc:
        return exc
    raise AssertionError("no error raised")


def _raised(call: Callable[[], object]) -> BaseException:
    """The exception ``call`` raises, with its real traceback."""
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


def _parse_error(text: str) -> ET.ParseError:
    return _raised(lambda: ET.fromstring(text))  # type: ignore[return-value]


def _fetcher() -> TranscriptListFetcher:
    return TranscriptListFetcher(requests.Session(), proxy_config=None)


def _no_transcript() -> yta.NoTranscriptFound:
    listing = yta.TranscriptList.build(requests.Session(), ID, CAPTIONS)
    return _raised(lambda: listing.find_transcript(["ja"]))  # type: ignore[return-value]


# (exception, expected kind, expected reason)
TABLE: list[tuple[BaseException, FailureKind, str]] = [
    (yta.IpBlocked(ID), BLOCKED, "ip_blocked"),
    (_raised(lambda: _raise_http_errors(_response(429), ID)), BLOCKED, "too_many_requests"),
    (_raised(lambda: _fetcher()._extract_innertube_api_key('<div class="g-recaptcha">', ID)), BLOCKED, "recaptcha"),
    (yta.RequestBlocked(ID), BLOCKED, "bot_check"),
    (requests.exceptions.RetryError("too many 429 error responses"), BLOCKED, "too_many_requests"),
    (yta.YouTubeRequestFailed(ID, _http_error(429)), BLOCKED, "too_many_requests"),
    (yta.YouTubeRequestFailed(ID, _http_error(503)), RETRYABLE, "server_error"),
    (yta.YouTubeRequestFailed(ID, _http_error(500)), RETRYABLE, "server_error"),
    (yta.YouTubeRequestFailed(ID, _http_error(403)), RETRYABLE, "http_error"),
    (yta.YouTubeRequestFailed(ID, requests.HTTPError("weird")), RETRYABLE, "http_error"),
    (_http_error(429), BLOCKED, "too_many_requests"),
    (_http_error(503), RETRYABLE, "server_error"),
    (_http_error(404), RETRYABLE, "http_error"),
    (yta.FailedToCreateConsentCookie(ID), RETRYABLE, "consent"),
    (yta.YouTubeDataUnparsable(ID), RETRYABLE, "unexpected_response"),
    (_raised(lambda: _response(200, "<html>").json()), RETRYABLE, "unexpected_response"),
    (_raised(lambda: _fetcher()._extract_captions_json({}, ID)), RETRYABLE, "unexpected_response"),
    (
        _raised(lambda: yta.TranscriptList.build(requests.Session(), ID, {"captionTracks": [{}]})),
        RETRYABLE,
        "unexpected_response",
    ),
    (requests.TooManyRedirects("Exceeded 30 redirects."), RETRYABLE, "unexpected_response"),
    (_parse_error("<transcript><te"), RETRYABLE, "unexpected_response"),
    (_parse_error('<transcript><text start="0">cut off</text>'), RETRYABLE, "unexpected_response"),
    (requests.ConnectionError("refused"), RETRYABLE, "transport"),
    (requests.exceptions.ProxyError("SOCKS refused"), RETRYABLE, "transport"),
    (requests.exceptions.SSLError("bad cert"), RETRYABLE, "transport"),
    (requests.exceptions.ChunkedEncodingError("cut"), RETRYABLE, "transport"),
    (requests.exceptions.ContentDecodingError("gzip"), RETRYABLE, "transport"),
    (socks.GeneralProxyError("Socket error"), RETRYABLE, "transport"),
    (socks.ProxyConnectionError("Error connecting to SOCKS5 proxy"), RETRYABLE, "transport"),
    (urllib3.exceptions.ProtocolError("Connection aborted."), RETRYABLE, "transport"),
    (ConnectionResetError(104, "reset"), RETRYABLE, "transport"),
    (requests.Timeout("slow"), RETRYABLE, "timeout"),
    (requests.ReadTimeout("slow"), RETRYABLE, "timeout"),
    (requests.ConnectTimeout("slow"), RETRYABLE, "timeout"),
    (urllib3.exceptions.ReadTimeoutError(None, "https://x", "read timed out"), RETRYABLE, "timeout"),  # type: ignore[arg-type]
    (TimeoutError("timed out"), RETRYABLE, "timeout"),
    (_parse_error(""), PERMANENT, "empty_timedtext"),
    (yta.PoTokenRequired(ID), PERMANENT, "po_token_required"),
    (yta.VideoUnavailable(ID), PERMANENT, "video_unavailable"),
    (yta.InvalidVideoId(ID), PERMANENT, "invalid_video_id"),
    (yta.TranscriptsDisabled(ID), PERMANENT, "transcripts_disabled"),
    (_no_transcript(), PERMANENT, "no_transcript"),
    (yta.AgeRestricted(ID), PERMANENT, "age_restricted"),
    (yta.VideoUnplayable(ID, "Private video", ["Ask the owner"]), PERMANENT, "unplayable"),
    (yta.NotTranslatable(ID), PERMANENT, "not_translatable"),
    (yta.TranslationLanguageNotAvailable(ID), PERMANENT, "translation_unavailable"),
]


def _case_id(value: object) -> str:
    return type(value).__name__ if isinstance(value, BaseException) else str(value)


@pytest.mark.parametrize(("exc", "kind", "reason"), TABLE, ids=_case_id)
def test_classification(exc: BaseException, kind: FailureKind, reason: str) -> None:
    failure = classify_failure(exc, ID)
    assert (failure.kind, failure.reason) == (kind, reason)
    assert failure.video_id == ID
    assert failure.__cause__ is exc
    assert isinstance(failure, StudyBuddyError)
    assert str(failure).strip()


def _all_subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_all_subclasses(direct)}}


def test_every_library_transcript_error_is_classified() -> None:
    """Catches a library upgrade that adds an error we would otherwise re-raise as a bug."""
    covered = {type(exc) for exc, _, _ in TABLE}
    assert _all_subclasses(yta.CouldNotRetrieveTranscript) <= covered


@pytest.mark.parametrize(
    "exc",
    [
        AttributeError("'NoneType' object has no attribute 'x'"),  # ours, not the library's
        KeyError("title"),
        ValueError("bad"),
        TypeError("bad"),
        RuntimeError("bug"),
        ZeroDivisionError(),
        requests.exceptions.InvalidURL("bad proxy URL"),  # configuration, not YouTube
        yta.CookieInvalid(Path("/tmp/cookies.txt")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bugs_and_unknown_errors_are_reraised(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as raised:
        classify_failure(exc, ID)
    assert raised.value is exc


def test_our_own_attribute_error_with_a_traceback_is_reraised() -> None:
    exc = _raised(lambda: None.missing)  # type: ignore[attr-defined]
    assert isinstance(exc, AttributeError)
    with pytest.raises(AttributeError):
        classify_failure(exc, ID)


def test_messages_keep_what_the_user_needs() -> None:
    no_transcript = str(classify_failure(_no_transcript(), ID))
    assert "['ja']" in no_transcript and 'en ("English")' in no_transcript and 'de ("German' in no_transcript
    unplayable = str(classify_failure(yta.VideoUnplayable(ID, "Private video", ["Ask the owner"]), ID))
    assert "Private video" in unplayable and "Ask the owner" in unplayable
    assert "503" in str(classify_failure(yta.YouTubeRequestFailed(ID, _http_error(503)), ID))


def test_failure_kind_is_a_string_enum() -> None:
    assert [str(kind) for kind in FailureKind] == ["blocked", "retryable", "permanent"]
    assert json.dumps({"kind": FailureKind.BLOCKED}) == '{"kind": "blocked"}'


# --- through fetch_transcript, with canned HTTP answers (an adapter; no sockets) -------------

WATCH_OK = '<html><script>ytcfg.set({"INNERTUBE_API_KEY": "FAKEKEY_123-abc"})</script></html>'
TIMEDTEXT_OK = (
    '<?xml version="1.0" encoding="utf-8" ?><transcript>'
    '<text start="0" dur="1.54">Hey &amp;amp; &lt;i&gt;hi&lt;/i&gt;</text>'
    '<text start="1.54" dur="2">there</text></transcript>'
)
OEMBED_OK = json.dumps({"title": "Never Gonna Give You Up", "author_name": "Rick Astley"})


def _player(playability: dict[str, str], captions: dict | None = None) -> str:
    """An InnerTube player answer body."""
    body: dict[str, object] = {"playabilityStatus": playability}
    if captions is not None:
        body["captions"] = {"playerCaptionsTracklistRenderer": captions}
    return json.dumps(body)


class CannedYouTube(BaseAdapter):
    """Answers each request from a per-path table and records what was asked."""

    def __init__(self, **overrides: tuple[int, str] | BaseException) -> None:
        super().__init__()
        self.answers: dict[str, tuple[int, str] | BaseException] = {
            "watch": (200, WATCH_OK),
            "player": (200, _player({"status": "OK"}, CAPTIONS)),
            "timedtext": (200, TIMEDTEXT_OK),
            "oembed": (200, OEMBED_OK),
        }
        self.answers.update(overrides)
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        self.seen.append(request)
        answer = self.answers[urlsplit(request.url or "").path.rsplit("/", 1)[-1]]
        if isinstance(answer, BaseException):
            raise answer
        response = _response(*answer, url=request.url or "")
        response.request = request
        response.headers = CaseInsensitiveDict()
        return response

    def close(self) -> None:
        pass

    @property
    def paths(self) -> list[str]:
        return [urlsplit(r.url or "").path for r in self.seen]


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves the canned adapter answers everything: any real connection attempt fails the test."""

    def refuse(*args: object) -> None:
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _session(adapter: CannedYouTube) -> requests.Session:
    session = requests.Session()
    session.proxies = {"https": "socks5h://worker-1:x@127.0.0.1:9"}
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def test_fetch_success_then_title_on_the_same_session() -> None:
    adapter = CannedYouTube()
    session = _session(adapter)
    transcript = fetch_transcript(session, ID)
    assert adapter.paths == ["/watch", "/youtubei/v1/player", "/api/timedtext", "/oembed"]
    assert transcript.snippets == (Snippet("Hey & hi", 0.0, 1.54), Snippet("there", 1.54, 2.0))
    assert (transcript.language, transcript.language_code, transcript.is_generated) == ("English", "en", False)
    assert (transcript.title, transcript.channel) == ("Never Gonna Give You Up", "Rick Astley")
    assert transcript.translated_from is None
    assert transcript.duration == pytest.approx(3.54)
    assert transcript.text == "Hey & hi there"
    assert session.proxies == {"https": "socks5h://worker-1:x@127.0.0.1:9"}
    oembed = parse_qs(urlsplit(adapter.seen[-1].url or "").query)
    assert oembed == {"url": [f"https://www.youtube.com/watch?v={ID}"], "format": ["json"]}


def test_fetch_language_priority() -> None:
    adapter = CannedYouTube()
    transcript = fetch_transcript(_session(adapter), ID, languages=["ja", "de", "en"], with_info=False)
    assert adapter.seen[-1].url.endswith("&kind=asr&lang=de")  # type: ignore[union-attr]
    assert len(adapter.seen) == 3  # no oEmbed request without with_info
    assert (transcript.language, transcript.language_code) == ("German (auto-generated)", "de")
    assert transcript.is_generated


def test_fetch_translation() -> None:
    adapter = CannedYouTube()
    transcript = fetch_transcript(_session(adapter), ID, translate_to="fr")
    assert adapter.paths[-2:] == ["/api/timedtext", "/oembed"]
    assert adapter.seen[-2].url.endswith("&lang=en&tlang=fr")  # type: ignore[union-attr]
    assert (transcript.language, transcript.language_code, transcript.translated_from) == ("French", "fr", "en")
    assert transcript.is_generated


def test_no_translation_when_already_in_the_target_language() -> None:
    adapter = CannedYouTube()
    transcript = fetch_transcript(_session(adapter), ID, translate_to="en", with_info=False)
    assert "tlang" not in (adapter.seen[-1].url or "")
    assert transcript.translated_from is None and not transcript.is_generated


BOT_CHECK = {"status": "LOGIN_REQUIRED", "reason": "Sign in to confirm you’re not a bot"}


@pytest.mark.parametrize(
    ("overrides", "kind", "reason"),
    [
        ({"watch": (429, "")}, BLOCKED, "too_many_requests"),
        ({"watch": (200, '<div class="g-recaptcha"></div>')}, BLOCKED, "recaptcha"),
        ({"player": (429, "")}, BLOCKED, "too_many_requests"),
        ({"timedtext": (429, "")}, BLOCKED, "too_many_requests"),
        ({"player": (200, _player(BOT_CHECK))}, BLOCKED, "bot_check"),
        ({"watch": (503, "")}, RETRYABLE, "server_error"),
        ({"watch": (200, "<html></html>")}, RETRYABLE, "unexpected_response"),
        ({"player": (200, "<html>oops</html>")}, RETRYABLE, "unexpected_response"),
        ({"player": (200, "{}")}, RETRYABLE, "unexpected_response"),
        ({"watch": requests.exceptions.ProxyError("SOCKS5 general failure")}, RETRYABLE, "transport"),
        ({"timedtext": requests.ReadTimeout("read timed out")}, RETRYABLE, "timeout"),
        ({"timedtext": (200, "")}, PERMANENT, "empty_timedtext"),
        ({"player": (200, _player({"status": "OK"}))}, PERMANENT, "transcripts_disabled"),
        (
            {"player": (200, _player({"status": "ERROR", "reason": "This video is unavailable"}))},
            PERMANENT,
            "video_unavailable",
        ),
        (
            {"player": (200, _player({"status": "UNPLAYABLE", "reason": "Not in your country"}))},
            PERMANENT,
            "unplayable",
        ),
    ],
)
def test_fetch_failures_are_classified(overrides: dict, kind: FailureKind, reason: str) -> None:
    with pytest.raises(FetchFailure) as raised:
        fetch_transcript(_session(CannedYouTube(**overrides)), ID)
    assert (raised.value.kind, raised.value.reason, raised.value.video_id) == (kind, reason, ID)


def test_fetch_missing_language_is_permanent_and_lists_what_exists() -> None:
    with pytest.raises(FetchFailure) as raised:
        fetch_transcript(_session(CannedYouTube()), ID, languages=["ja"])
    assert raised.value.kind is PERMANENT and raised.value.reason == "no_transcript"
    assert 'en ("English")' in str(raised.value)


def test_fetch_po_token_track_is_permanent_without_a_request() -> None:
    captions = json.loads(json.dumps(CAPTIONS))
    captions["captionTracks"][0]["baseUrl"] += "&exp=xpe"
    adapter = CannedYouTube(player=(200, _player({"status": "OK"}, captions)))
    with pytest.raises(FetchFailure) as raised:
        fetch_transcript(_session(adapter), ID)
    assert raised.value.reason == "po_token_required"
    assert "/api/timedtext" not in adapter.paths


def test_fetch_untranslatable_is_permanent() -> None:
    with pytest.raises(FetchFailure) as raised:
        fetch_transcript(_session(CannedYouTube()), ID, languages=["de"], translate_to="fr")
    assert (raised.value.kind, raised.value.reason) == (PERMANENT, "not_translatable")


def test_fetch_does_not_disguise_a_bug_as_a_fetch_failure() -> None:
    with pytest.raises(ZeroDivisionError):
        fetch_transcript(_session(CannedYouTube(player=ZeroDivisionError())), ID)


@pytest.mark.parametrize(
    "oembed",
    [
        (404, "Not Found"),
        (401, "Unauthorized"),
        (429, ""),
        (200, "not json"),
        (200, "[]"),
        (200, '{"title": ""}'),
        requests.ConnectionError("reset"),
    ],
)
def test_missing_title_is_never_fatal(oembed: tuple[int, str] | BaseException) -> None:
    transcript = fetch_transcript(_session(CannedYouTube(oembed=oembed)), ID)
    assert transcript.title is None and transcript.channel is None
    assert transcript.snippets


def test_title_without_channel() -> None:
    info = fetch_video_info(_session(CannedYouTube(oembed=(200, '{"title": " T "}'))), ID)
    assert info is not None and (info.title, info.channel) == ("T", None)


def test_title_lookup_does_not_swallow_bugs() -> None:
    with pytest.raises(RuntimeError):
        fetch_video_info(_session(CannedYouTube(oembed=RuntimeError("bug"))), ID)
