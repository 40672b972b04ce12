"""Sort every way a transcript fetch fails into: blocked exit, retryable, or about the video.

A block moves the video to a fresh exit and quarantines the old one, transport trouble just
moves it, and a permanent answer is never retried (a video without subtitles costs no exit). Exceptions we do
not recognise are bugs and are re-raised, so they cannot burn exits disguised as blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import requests
import socks
import urllib3.exceptions
import youtube_transcript_api as yta

from .._exceptions import FailureKind, FetchFailure

__all__ = ["FailureKind", "FetchFailure", "classify_failure"]

_LIBRARY_DIR = Path(yta.__file__).resolve().parent
_STATUS = re.compile(r"^(\d{3}) ")
# expat's "no element found" at line 1, column 0: the body was empty.
_XML_NO_ELEMENTS = 3


def classify_failure(exc: BaseException, video_id: str) -> FetchFailure:
    """Classify ``exc`` raised while fetching ``video_id``; re-raise it if it is not a fetch failure."""
    kind, reason, message = _classify(exc)
    failure = FetchFailure(kind, reason, video_id, message)
    failure.__cause__ = exc
    failure.__suppress_context__ = True
    return failure


def _classify(exc: BaseException) -> tuple[FailureKind, str, str]:
    blocked, retryable, permanent = FailureKind.BLOCKED, FailureKind.RETRYABLE, FailureKind.PERMANENT
    # Order matters: IpBlocked is a RequestBlocked, ConnectTimeout is both a Timeout and a
    # ConnectionError (we call it a timeout), JSONDecodeError is a RequestException.
    match exc:
        case yta.IpBlocked():
            reason = _ip_block_reason(exc)
            return blocked, reason, f"YouTube blocked this exit ({reason.replace('_', ' ')})"
        case yta.RequestBlocked():
            return blocked, "bot_check", "YouTube asked this exit to sign in to prove it is not a bot"
        case yta.YouTubeRequestFailed():
            return _http_failure(_status_of(exc.reason), exc.reason)
        case requests.exceptions.HTTPError():
            status = exc.response.status_code if exc.response is not None else None
            return _http_failure(status, str(exc))
        case requests.exceptions.RetryError():
            return blocked, "too_many_requests", f"YouTube kept answering 429: {exc}"
        case yta.FailedToCreateConsentCookie():
            return retryable, "consent", "YouTube's cookie consent page could not be passed"
        case yta.YouTubeDataUnparsable():
            return retryable, "unexpected_response", "the watch page had no API key"
        case requests.exceptions.JSONDecodeError():
            return retryable, "unexpected_response", f"YouTube's player answer was not JSON: {exc}"
        case requests.exceptions.TooManyRedirects():
            return retryable, "unexpected_response", f"redirect loop: {exc}"
        case AttributeError() | KeyError() if _raised_in_library(exc):
            return retryable, "unexpected_response", f"YouTube's answer lacked expected data: {exc!r}"
        case requests.exceptions.Timeout() | TimeoutError() | urllib3.exceptions.TimeoutError():
            return retryable, "timeout", f"timed out: {exc}"
        case (
            requests.exceptions.ConnectionError()
            | requests.exceptions.ChunkedEncodingError()
            | requests.exceptions.ContentDecodingError()
            | socks.ProxyError()
            | urllib3.exceptions.HTTPError()
            | ConnectionError()
        ):
            return retryable, "transport", f"{type(exc).__name__}: {exc}"
        case ParseError() if exc.code == _XML_NO_ELEMENTS and exc.position == (1, 0):
            return permanent, "empty_timedtext", "YouTube sent an empty transcript (PO token gated)"
        case ParseError():
            return retryable, "unexpected_response", f"transcript XML did not parse: {exc}"
        case yta.PoTokenRequired():
            return permanent, "po_token_required", "this transcript needs a PO token"
        case yta.InvalidVideoId():
            return permanent, "invalid_video_id", "YouTube says this is not a video id"
        case yta.VideoUnavailable():
            return permanent, "video_unavailable", "the video is no longer available"
        case yta.TranscriptsDisabled():
            return permanent, "transcripts_disabled", "subtitles are disabled for this video"
        case yta.NoTranscriptFound():
            return permanent, "no_transcript", exc.cause
        case yta.AgeRestricted():
            return permanent, "age_restricted", "the video is age-restricted"
        case yta.VideoUnplayable():
            details = "; ".join([exc.reason or "no reason given", *exc.sub_reasons])
            return permanent, "unplayable", f"the video is unplayable: {details}"
        case yta.NotTranslatable():
            return permanent, "not_translatable", "this transcript cannot be translated"
        case yta.TranslationLanguageNotAvailable():
            return permanent, "translation_unavailable", "YouTube offers no translation into that language"
    raise exc


def _http_failure(status: int | None, detail: str) -> tuple[FailureKind, str, str]:
    if status == 429:
        return FailureKind.BLOCKED, "too_many_requests", f"YouTube answered 429: {detail}"
    if status is not None and status >= 500:
        return FailureKind.RETRYABLE, "server_error", f"YouTube server error: {detail}"
    return FailureKind.RETRYABLE, "http_error", f"HTTP error: {detail}"


def _status_of(reason: str) -> int | None:
    """The status code in the library's copy of ``str(HTTPError)``: "503 Server Error: ..."."""
    match = _STATUS.match(reason)
    return int(match.group(1)) if match else None


def _ip_block_reason(exc: BaseException) -> str:
    """Tell a 429 from a recaptcha page: the library raises the same IpBlocked for both.

    Only the raising function differs (in 1.2.x); unknown origins fall back to "ip_blocked".
    A 429 reached by following YouTube's redirect to google.com/sorry is the recaptcha page.
    """
    frames = {frame.f_code.co_name: frame for frame in _frames(exc)}
    if "_raise_http_errors" in frames:
        response = frames["_raise_http_errors"].f_locals.get("response")
        return "recaptcha" if _is_sorry_page(response) else "too_many_requests"
    if "_extract_innertube_api_key" in frames:
        return "recaptcha"
    return "ip_blocked"


def _is_sorry_page(response: object) -> bool:
    """Whether a response is Google's "unusual traffic" page (``/sorry/`` after a redirect)."""
    if not isinstance(response, requests.Response) or not response.history:
        return False
    return urlsplit(response.url).path.startswith("/sorry/")


def _raised_in_library(exc: BaseException) -> bool:
    """True if the innermost frame is youtube-transcript-api code choking on YouTube's answer."""
    frames = list(_frames(exc))
    return bool(frames) and Path(frames[-1].f_code.co_filename).resolve().is_relative_to(_LIBRARY_DIR)


def _frames(exc: BaseException) -> Iterator[FrameType]:
    """The frames ``exc`` passed through, outermost first."""
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next
