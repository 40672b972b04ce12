"""yt-dlp kept on one ``requests.Session``: its only request handler sends through that session.

yt-dlp normally picks among its own handlers (urllib, requests, curl_cffi), each opening its own
connections with its own proxy settings. Here ``build_request_director`` is overridden so the
director holds exactly one handler, ``SessionRH``, which hands every request to the session it
was given (whose adapters carry the proxy, the timeouts and the CA); a URL scheme it does not
take fails the request instead of falling back to another handler. The ``proxy`` setting is the
session's own proxy, so even a yt-dlp that ignored our handler would not use the environment's.

The handler also stops the extraction at the first sign of a block (a 429, Google's ``/sorry``
page, a recaptcha page) or of transport trouble: yt-dlp would otherwise go on to fallbacks
(``navigation/resolve_url``) from the same blocked exit. What it saw is kept in ``failure``.
"""

from __future__ import annotations

import io
import logging
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters

# Importing yt-dlp replaces requests' SOCKS manager and proxy selection for the whole process
# (for yt-dlp's own requests handler, which we never use). Put requests' own back: TorSession
# checks the proxy requests will pick, and must see the same choice requests then makes.
_REQUESTS_GLOBALS = {name: getattr(requests.adapters, name) for name in ("SOCKSProxyManager", "select_proxy")}
import yt_dlp  # noqa: E402
from yt_dlp.networking import RequestDirector  # noqa: E402
from yt_dlp.networking.common import Request, RequestHandler, Response  # noqa: E402
from yt_dlp.networking.exceptions import HTTPError, RequestError  # noqa: E402
from yt_dlp.utils import DownloadError, ExtractorError, PlaylistEntries  # noqa: E402

from ._failures import FailureKind, FetchFailure  # noqa: E402

for _name, _original in _REQUESTS_GLOBALS.items():
    setattr(requests.adapters, _name, _original)

log = logging.getLogger(__name__)

#: Headers that described the body on the wire; ``requests`` has already decoded it.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_RECAPTCHA = b'class="g-recaptcha"'


class ExtractionStopped(RequestError):
    """Raised into yt-dlp to end the extraction at once; the reason is ``Extraction.failure``."""


def parse_playlist_items(spec: str) -> list[object]:
    """yt-dlp's own parse of an ``-I`` selection; ``ValueError`` names the bad part."""
    return list(PlaylistEntries.parse_playlist_items(spec))


class SessionRH(RequestHandler):
    """Sends yt-dlp's requests with ``session.request``; records and stops at a block."""

    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = None  # yt-dlp's proxies are ignored: the session has its own
    _SUPPORTED_FEATURES = None
    RH_NAME = "session"

    def __init__(self, *, session: requests.Session, extraction: Extraction, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.extraction = extraction

    def _check_extensions(self, extensions: dict[str, Any]) -> None:
        super()._check_extensions(extensions)
        for name in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing"):
            extensions.pop(name, None)

    def _send(self, request: Request) -> Response:
        extraction = self.extraction
        if extraction.failure is not None:
            raise ExtractionStopped(f"not sent after an earlier failure: {request.url}")
        extraction.requests_sent += 1
        log.debug("yt-dlp %s %s", request.method, request.url)
        try:
            answer = self.session.request(
                request.method,
                request.url,
                data=request.data,
                headers=self._get_headers(request),
                cookies=self._get_cookiejar(request),
                timeout=self._calculate_timeout(request),
                allow_redirects=True,
            )
        except Exception as exc:  # classified by the caller; a bug there is re-raised
            extraction.failure = exc
            raise ExtractionStopped(f"{type(exc).__name__} on {request.url}") from exc
        blocked = _block_reason(answer)
        if blocked is not None:
            extraction.failure = FetchFailure(
                FailureKind.BLOCKED,
                blocked,
                extraction.item_id or "",
                f"YouTube blocked this exit ({blocked.replace('_', ' ')}) on {urlsplit(request.url).path}",
            )
            raise ExtractionStopped(extraction.failure.args[0])
        if answer.status_code >= 500:
            extraction.failure = requests.HTTPError(
                f"{answer.status_code} Server Error for url: {answer.url}", response=answer
            )
            raise ExtractionStopped(str(extraction.failure))
        headers = {name: value for name, value in answer.headers.items() if name.lower() not in _WIRE_HEADERS}
        response = Response(
            io.BytesIO(answer.content), url=answer.url, headers=headers, status=answer.status_code, reason=answer.reason
        )
        if not 200 <= answer.status_code < 300:
            raise HTTPError(response)
        return response


def _block_reason(answer: requests.Response) -> str | None:
    """YouTube's ways of saying "not from this exit": 429, Google's sorry page, a recaptcha."""
    if answer.history and urlsplit(answer.url).path.startswith("/sorry/"):
        return "recaptcha"
    if answer.status_code == 429:
        return "too_many_requests"
    if answer.status_code == 200 and "html" in answer.headers.get("Content-Type", "") and _RECAPTCHA in answer.content:
        return "recaptcha"
    return None


class _Logger:
    """yt-dlp's messages go to our debug log; we report failures ourselves, once."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    info = debug

    def warning(self, message: str) -> None:
        log.debug("yt-dlp warning: %s", message)

    def error(self, message: str) -> None:
        log.debug("yt-dlp error: %s", message)


class _SessionYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL whose only request handler is ``SessionRH``."""

    def __init__(self, params: dict[str, Any], session: requests.Session, extraction: Extraction) -> None:
        self._session = session
        self._extraction = extraction
        super().__init__(params)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> RequestDirector:
        director = super().build_request_director([], preferences=None)  # no handler of yt-dlp's own
        headers = self.params["http_headers"].copy()
        director.add_handler(
            SessionRH(
                session=self._session,
                extraction=self._extraction,
                logger=director.logger,
                headers=headers,
                cookiejar=self.cookiejar,
                timeout=self.params.get("socket_timeout"),
            )
        )
        return director


class Extraction:
    """One flat extraction of a YouTube tab (playlist or channel videos) over one session."""

    def __init__(self, session: requests.Session, *, timeout: float, playlist_items: str | None = None) -> None:
        self.session = session
        self.timeout = timeout
        self.playlist_items = playlist_items
        #: What stopped the extraction inside the handler: a FetchFailure for a block, else the
        #: exception ``session.request`` raised (or a ``requests.HTTPError`` for a 5xx).
        self.failure: BaseException | None = None
        self.requests_sent = 0
        self.item_id: str | None = None
        self.handlers: list[str] = []

    def params(self) -> dict[str, Any]:
        proxy = (self.session.proxies or {}).get("https", "")
        return {
            "extract_flat": "in_playlist",
            "skip_download": True,
            "quiet": True,
            "noprogress": True,
            "logger": _Logger(),
            "socket_timeout": self.timeout,
            # A failed request ends the attempt: the caller retries on a fresh exit.
            "extractor_retries": 0,
            "proxy": proxy,  # never the environment's (HTTPS_PROXY and co.)
            "cachedir": False,
            "playlist_items": self.playlist_items,
            "color": {"stdout": "no_color", "stderr": "no_color"},
        }

    def extract(self, url: str) -> dict[str, Any]:
        """yt-dlp's ``extract_info`` of ``url`` with the YouTube tab extractor; ``entries`` are the
        videos ``playlist_items`` selects, ``requested_entries`` their positions.

        Unprocessed (``process=False``): yt-dlp's playlist processing would send every flat entry
        through its download pipeline (output templates, forced printings), about a third of
        the CPU time of a long playlist, for fields we never read. The selection is yt-dlp's own
        (`PlaylistEntries`, as its playlist processing makes it), which reads only the pages
        it needs."""
        self.item_id = url
        with _SessionYoutubeDL(self.params(), self.session, self) as ydl:
            self.handlers = list(ydl._request_director.handlers)
            info = ydl.extract_info(url, download=False, ie_key="YoutubeTab", process=False)
            if not isinstance(info, dict) or info.get("_type") != "playlist":
                raise ExtractorError(f"yt-dlp gave no playlist for {url}", expected=False)
            # By position, in the order first selected ("1,1" is one video), as yt-dlp's
            # ``orderedSet`` does it, without its quadratic list scan.
            selected = dict(PlaylistEntries(ydl, info).get_requested_items())
        info["requested_entries"] = list(selected)
        info["entries"] = list(selected.values())
        return info

    # -- reading yt-dlp's errors -------------------------------------------------------------

    @staticmethod
    def _chain(exc: BaseException) -> list[BaseException]:
        """The exception and what caused it: DownloadError's exc_info, ExtractorError's cause."""
        seen: list[BaseException] = []
        current: BaseException | None = exc
        while current is not None and current not in seen:
            seen.append(current)
            if isinstance(current, DownloadError) and current.exc_info:
                current = current.exc_info[1]
            elif isinstance(current, (ExtractorError, RequestError)) and current.cause is not None:
                current = current.cause if isinstance(current.cause, BaseException) else None
            else:
                current = current.__cause__
        return seen

    def http_status(self, exc: BaseException) -> int | None:
        """The status of the HTTP error that ended the extraction, if one did."""
        for link in self._chain(exc):
            if isinstance(link, HTTPError):
                return int(link.status)
        return None

    def expected_message(self, exc: BaseException) -> str | None:
        """yt-dlp's message for an "expected" error (YouTube said the list does not exist)."""
        for link in self._chain(exc):
            if isinstance(link, ExtractorError) and link.expected:
                return str(link.orig_msg)
        return None

    def is_extraction_error(self, exc: BaseException) -> bool:
        return any(isinstance(link, (ExtractorError, DownloadError)) for link in self._chain(exc))

    def message(self, exc: BaseException) -> str:
        for link in self._chain(exc):
            if isinstance(link, ExtractorError):
                return str(link.orig_msg)
        return str(exc)
