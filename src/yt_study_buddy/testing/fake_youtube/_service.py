"""An in-process fake YouTube over TLS that speaks youtube-transcript-api 1.2.x's protocol.

It answers the library's three requests (watch page, InnerTube player, timedtext) plus oEmbed,
playlists and channels as yt-dlp reads them (``_courses``) and
check.torproject.org's ``/api/ip`` exit echo, so the real library and the real Tor client can run
offline. Failures are scripted per video id and/or per client IP (the Tor exit the request came
from), optionally for a limited number of uses, and every request is logged with the exit it came
from and what was served. Scripted outcomes raise exactly what real YouTube makes the library
raise (research §1.6).

Like YouTube it gzips its answers for clients that accept gzip and sends them chunked (both on
by default, each can be turned off), redirects a recaptcha block to www.google.com/sorry if so
scripted (the lab maps google.com to it too), and can rate-limit each exit (``RateLimit``).
It can also replay answers recorded from real YouTube (``testing.recordings``): a recorded video
(``add_recording``) is served from its recorded watch page, player answer and timedtext, and a
script's ``body`` serves a recorded error answer as-is where its behaviour acts.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from gzip import compress as gzip_compress
from pathlib import Path
from types import TracebackType

import trustme

from . import _pages as pages
from ._courses import CourseCatalog, FakeCourse
from ._pages import FakeTrack, FakeVideo, RecordedVideo, default_video
from ._scripts import Behavior, RateLimit, RateLimiter, Script, Step
from ._server import Reply, Request, TLSServer

logger = logging.getLogger(__name__)

#: Names on the server certificate: what the lab's client tor maps to the fake, plus loopback.
HOSTNAMES = (
    "www.youtube.com",
    "youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "check.torproject.org",
    "www.google.com",
    "google.com",
    "localhost",
    "127.0.0.1",
)
TOR_CHECK_HOST = "check.torproject.org"
#: Where the recaptcha block redirects (only /sorry/index is served there).
GOOGLE_HOSTS = frozenset({"www.google.com", "google.com"})
#: The log's outcome for the sorry page (a 429, whoever asks).
SORRY_OUTCOME = "sorry"
_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=UTF-8"
_XML = "text/xml; charset=UTF-8"


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it. ``time`` is ``time.monotonic()`` at arrival and
    ``answered`` once the reply was written (None while pending, and for ever for a stalled or
    cut-off one): two requests whose intervals overlap were served at once. ``visitor`` is the
    VISITOR_INFO1_LIVE cookie it carried (set by earlier watch pages: a cookie seen from two
    exits means a Session was reused across them). ``content_encoding`` and ``chunked`` say how
    the answer went out; ``size`` is the length of the body it was answered with, before any
    gzip (tells a recorded answer from the synthetic one)."""

    time: float
    client_ip: str
    method: str
    path: str
    video_id: str | None
    outcome: str
    visitor: str | None = None
    content_encoding: str | None = None
    chunked: bool = False
    size: int = 0
    answered: float | None = None


class FakeYouTube:
    """The fake server. Use as a context manager, or ``start()``/``stop()``.

    ``latency`` is seconds per video, spread evenly over its watch, player and timedtext
    requests (benchmarks); ``port=0`` picks a free port (``self.port`` after start).
    ``gzip`` compresses answers for clients that accept it, ``chunked`` sends them with
    ``Transfer-Encoding: chunked`` (YouTube does both). ``rate_limit`` blocks exits that ask
    for too many videos too fast, timed on ``clock`` (off by default).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 443,
        ca: trustme.CA | None = None,
        latency: float = 0.0,
        gzip: bool = True,
        chunked: bool = True,
        rate_limit: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.ca = ca if ca is not None else trustme.CA()
        self.latency = latency
        self.gzip = gzip
        self.chunked = chunked
        self._default_rate_limit = rate_limit
        self._clock = clock
        self._limiter = RateLimiter(rate_limit, clock) if rate_limit is not None else None
        self._lock = threading.Lock()
        self._videos: dict[str, FakeVideo] = {}
        self._recorded: dict[str, RecordedVideo] = {}
        #: The player accepts its own key and those of the recorded watch pages it serves.
        self._api_keys: set[str] = {pages.API_KEY}
        #: Consent values of the walls served so far; ``CONSENT=YES+<v>`` passes with any of them.
        self._consent_values: set[str] = {pages.CONSENT_VALUE}
        #: Playlists and channels (``_courses``): their pages and InnerTube browse calls.
        self.courses = CourseCatalog()
        self._scripts: list[Script] = []
        self._log: list[LoggedRequest] = []
        self._visitors = itertools.count(1)
        self._stopping = threading.Event()
        self._server: TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._ca_dir: Path | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        """PEM file of the test CA, for ``requests``' ``verify=`` (exists while running)."""
        if self._ca_dir is None:
            raise RuntimeError("FakeYouTube is not running")
        return self._ca_dir / "ca.pem"

    def start(self) -> FakeYouTube:
        """Bind, then serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeYouTube is already running")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(*HOSTNAMES).configure_cert(context)
        self._stopping.clear()
        server = TLSServer((self.host, self.port), context, self._answer, self._stopping)
        self.port = server.server_address[1]
        self._ca_dir = Path(tempfile.mkdtemp(prefix="fake-youtube-"))
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fake-youtube",
            daemon=True,
        )
        self._thread.start()
        logger.info("fake YouTube listening on %s:%d", self.host, self.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, end stalled and idle connections, and wait for them (bounded)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout)
        stuck = server.close_connections(timeout)
        if stuck:
            logger.warning("fake YouTube: %d connection threads did not end", stuck)
        if self._ca_dir is not None:
            shutil.rmtree(self._ca_dir, ignore_errors=True)
        self._server = None
        self._thread = None
        self._ca_dir = None

    def __enter__(self) -> FakeYouTube:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- content and scripts -----------------------------------------------------------

    def add_video(self, video: FakeVideo) -> None:
        """Register (or replace) a video; unregistered well-formed ids get ``default_video``."""
        with self._lock:
            self._videos[video.video_id] = video

    def add_recording(self, video: RecordedVideo) -> None:
        """Serve ``video`` from its recorded answers under its own id (see `RecordedVideo`);
        oEmbed and a synthetic watch page (if none was recorded) show its recorded metadata."""
        key = video.api_key
        with self._lock:
            self._recorded[video.video_id] = video
            self._videos[video.video_id] = video.as_fake_video()
            if key is not None:
                self._api_keys.add(key)

    def recording(self, video_id: str) -> RecordedVideo | None:
        """The recorded video served under this id, if any."""
        with self._lock:
            return self._recorded.get(video_id)

    def add_course(self, course: FakeCourse) -> None:
        """Register (or replace) a playlist or channel; its videos are served as registered or
        default videos (register them with ``add_video`` to change their transcripts)."""
        self.courses.add(course)

    def video(self, video_id: str) -> FakeVideo:
        """The video served under this id."""
        with self._lock:
            registered = self._videos.get(video_id)
        return registered if registered is not None else default_video(video_id)

    def script(
        self,
        behavior: Behavior,
        *,
        video_id: str | None = None,
        client_ip: str | None = None,
        times: int | None = None,
        delay: float = 1.0,
        reason: str = pages.UNPLAYABLE_REASON,
        subreasons: tuple[str, ...] = pages.UNPLAYABLE_SUBREASONS,
        body: bytes | None = None,
    ) -> Script:
        """Script a behaviour. The newest matching script decides each request.

        ``delay`` is SLOW's extra seconds per request; ``reason``/``subreasons`` are
        UNPLAYABLE's text; ``body`` (a recorded answer) is served as-is, with the behaviour's
        status, instead of its synthetic page at the step where it acts (watch, player or
        timedtext; not oEmbed). Returns the live script (its ``times`` counts down).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for until reset)")
        if delay < 0:
            raise ValueError("delay must not be negative")
        script = Script(behavior, video_id, client_ip, times, delay, reason, tuple(subreasons), body)
        with self._lock:
            self._scripts.append(script)
        return script

    def block_exit(self, ip: str, behavior: Behavior = Behavior.RECAPTCHA, *, times: int | None = None) -> Script:
        """Treat every request from this exit IP with ``behavior``."""
        return self.script(behavior, client_ip=ip, times=times)

    def set_rate_limit(self, limit: RateLimit | None) -> None:
        """Rate-limit every exit from now on (None: no limit), with no ask counted yet."""
        with self._lock:
            self._limiter = RateLimiter(limit, self._clock) if limit is not None else None

    def rate_limited_until(self, ip: str) -> float | None:
        """When the rate limit's block of this exit ends (on ``clock``); None if not blocked."""
        with self._lock:
            return self._limiter.blocked_until(ip) if self._limiter is not None else None

    def reset(self) -> None:
        """Forget scripts and the request log, and restart the constructor's rate limit;
        registered videos stay."""
        self.set_rate_limit(self._default_rate_limit)
        with self._lock:
            self._scripts.clear()
            self._log.clear()

    # --- request log -------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def served(self, *, video_id: str | None = None, client_ip: str | None = None) -> list[LoggedRequest]:
        """Logged requests about this video and/or from this client IP."""
        return [
            entry
            for entry in self.requests
            if (video_id is None or entry.video_id == video_id) and (client_ip is None or entry.client_ip == client_ip)
        ]

    def exits_seen(self, video_id: str | None = None) -> list[str]:
        """Distinct client IPs (exits), in the order they first asked (about this video)."""
        return list(dict.fromkeys(entry.client_ip for entry in self.served(video_id=video_id)))

    # --- answering (called from connection threads) ------------------------------------

    def _claim(self, step: Step, video_id: str | None, client_ip: str, *, consented: bool = False) -> Script | None:
        """The script that acts on this request, with one use taken; else the rate limit's
        block, if any; None = serve normally."""
        with self._lock:
            limiter = self._limiter
            limited = limiter.claim(step, video_id, client_ip) if limiter is not None else None
            script = next((s for s in reversed(self._scripts) if s.matches(video_id, client_ip)), None)
            if script is None or step not in script.behavior.steps:
                return limited
            if script.behavior is Behavior.CONSENT and consented:
                return limited
            if script.times is not None:
                script.times -= 1
                if script.times == 0:
                    self._scripts.remove(script)
            return script

    def _answer(self, request: Request) -> Reply:
        """Route, decide and log one request; the connection thread sends the reply."""
        arrived = time.monotonic()
        if request.host == TOR_CHECK_HOST:
            if request.method == "GET" and request.path == "/api/ip":
                reply = Reply(200, pages.tor_check_json(request.client_ip), _JSON, "ok")
            else:
                reply = _not_found()
        elif request.host in GOOGLE_HOSTS:
            if request.method == "GET" and request.path == "/sorry/index":
                reply = self._sorry(request)
            else:
                reply = _not_found()
        elif request.method == "GET" and request.path == "/watch":
            reply = self._watch(request)
        elif request.method == "POST" and request.path == "/youtubei/v1/player":
            reply = self._player(request)
        elif request.method == "GET" and request.path == "/api/timedtext":
            reply = self._timedtext(request)
        elif request.method == "GET" and request.path == "/oembed":
            reply = self._oembed(request)
        elif (course_reply := self.courses.answer(request, self._claim)) is not None:
            reply = course_reply
        else:
            reply = _not_found()
        size = len(reply.body)  # before gzip: what was answered, not how it travelled
        reply = self._encoded(request, reply)
        entry = LoggedRequest(
            arrived,
            request.client_ip,
            request.method,
            request.path,
            reply.video_id,
            reply.outcome,
            request.cookies.get("VISITOR_INFO1_LIVE"),
            dict(reply.headers).get("Content-Encoding"),
            reply.chunked,
            size,
        )
        with self._lock:
            self._log.append(entry)
        logger.debug("%s %s %s -> %s", request.client_ip, request.method, request.path, entry)
        return dataclasses.replace(reply, sent=functools.partial(self._answered, entry))

    def _answered(self, entry: LoggedRequest) -> None:
        """Stamp the reply's end on the logged request (gone from the log after a reset)."""
        answered = time.monotonic()
        with self._lock:
            for index in range(len(self._log) - 1, -1, -1):  # recent requests are at the end
                if self._log[index] is entry:
                    self._log[index] = dataclasses.replace(entry, answered=answered)
                    return

    def _watch(self, request: Request) -> Reply:
        video_id = request.query.get("v")
        if not video_id:
            return _not_found()
        cookie = request.cookies.get("CONSENT", "")
        with self._lock:
            consented = cookie.startswith("YES+") and cookie[4:] in self._consent_values
        script = self._claim(Step.WATCH, video_id, request.client_ip, consented=consented)
        behavior = script.behavior if script is not None else Behavior.OK
        match behavior:
            case Behavior.CONSENT:
                status, page = 200, pages.consent_page(video_id)
            case Behavior.RECAPTCHA:
                status, page = 200, pages.recaptcha_page()
            case Behavior.RECAPTCHA_REDIRECT:
                return _redirect(pages.sorry_url(video_id, request.client_ip), behavior, video_id)
            case Behavior.RATE_LIMITED_WATCH:
                status, page = 429, pages.too_many_requests_page()
            case Behavior.SERVER_ERROR:
                status, page = 500, pages.error_page(500, "Internal Server Error")
            case Behavior.STALL:
                return Reply(0, b"", _HTML, behavior.outcome, video_id, stall=True)
            case _:
                return self._watch_page(request, video_id, script)
        body = _recorded_body(script) or page.encode()
        if behavior is Behavior.CONSENT:
            value = pages.consent_value(body)
            if value is not None:
                with self._lock:
                    self._consent_values.add(value)
        delay = self.latency / 3
        return Reply(status, body, _HTML, behavior.outcome, video_id, delay=delay)

    def _watch_page(self, request: Request, video_id: str, script: Script | None) -> Reply:
        """The real page; first-time visitors get a VISITOR_INFO1_LIVE cookie like on YouTube."""
        headers: tuple[tuple[str, str], ...] = ()
        if "VISITOR_INFO1_LIVE" not in request.cookies:
            cookie = (
                f"VISITOR_INFO1_LIVE=fv{next(self._visitors):09d}; Domain=.youtube.com; Path=/; "
                "Secure; HttpOnly; SameSite=none"
            )
            headers = (("Set-Cookie", cookie),)
        recorded = self.recording(video_id)
        if recorded is not None and recorded.watch_page is not None:
            page = recorded.watch_page
        else:
            page = pages.watch_page(self.video(video_id)).encode()
        return Reply(
            200,
            page,
            _HTML,
            script.behavior.outcome if script is not None else "ok",
            video_id,
            headers,
            delay=self.latency / 3 + _slow_delay(script),
        )

    def _player(self, request: Request) -> Reply:
        with self._lock:
            key_ok = request.query.get("key") in self._api_keys
        if not key_ok:
            body = pages.api_error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
            return Reply(400, body, _JSON, "bad-key")
        video_id = _innertube_video_id(request)
        if video_id is None:
            body = pages.api_error(400, "Precondition check failed.", "FAILED_PRECONDITION")
            return Reply(400, body, _JSON, "bad-request")
        delay = self.latency / 3
        if not pages.VIDEO_ID_RE.fullmatch(video_id):
            body = pages.unplayable_response("ERROR", pages.UNAVAILABLE_REASON)
            return Reply(200, body, _JSON, Behavior.UNAVAILABLE.outcome, video_id, delay=delay)
        script = self._claim(Step.PLAYER, video_id, request.client_ip)
        behavior = script.behavior if script is not None else Behavior.OK
        video = self.video(video_id)
        status = 200
        if behavior is Behavior.RATE_LIMITED_PLAYER:
            status = 429
            body = pages.api_error(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED")
        elif behavior is Behavior.BOT_CHECK:
            body = pages.unplayable_response(
                "LOGIN_REQUIRED",
                pages.BOT_CHECK_REASON,
                ("This helps protect our community. ", "Learn more"),
            )
        elif behavior is Behavior.AGE_RESTRICTED:
            body = pages.unplayable_response("LOGIN_REQUIRED", pages.AGE_RESTRICTED_REASON)
        elif behavior is Behavior.UNAVAILABLE:
            body = pages.unplayable_response("ERROR", pages.UNAVAILABLE_REASON)
        elif behavior is Behavior.UNPLAYABLE and script is not None:
            body = pages.unplayable_response("UNPLAYABLE", script.reason, script.subreasons)
        elif behavior is Behavior.TRANSCRIPTS_DISABLED:
            body = pages.player_response(video, captions=False)
        elif behavior is Behavior.LANGUAGE_MISSING:
            german = FakeTrack("de", "German", translatable=False)
            body = pages.player_response(video, tracks=(german,))
        elif behavior in (Behavior.OK, Behavior.SLOW) and (recorded := self.recording(video_id)):
            body = recorded.player
        else:
            body = pages.player_response(video, po_token=behavior is Behavior.PO_TOKEN)
        body = _recorded_body(script) or body
        return Reply(status, body, _JSON, behavior.outcome, video_id, delay=delay + _slow_delay(script))

    def _timedtext(self, request: Request) -> Reply:
        video_id, language = request.query.get("v"), request.query.get("lang")
        if not video_id or not language:
            return _not_found()
        delay = self.latency / 3
        if request.query.get("exp") == "xpe":
            return Reply(200, b"", _XML, Behavior.PO_TOKEN.outcome, video_id, delay=delay)
        script = self._claim(Step.TIMEDTEXT, video_id, request.client_ip)
        behavior = script.behavior if script is not None else Behavior.OK
        if behavior is Behavior.RATE_LIMITED_TIMEDTEXT:
            page = _recorded_body(script) or pages.too_many_requests_page().encode()
            return Reply(429, page, _HTML, behavior.outcome, video_id, delay=delay)
        if behavior is Behavior.EMPTY_TIMEDTEXT:
            body = _recorded_body(script) or b""
            return Reply(200, body, _XML, "empty", video_id, delay=delay)
        recorded = self.recording(video_id)
        if recorded is not None:
            xml = recorded.timedtext
        else:
            snippets = self.video(video_id).snippets(
                language,
                generated=request.query.get("kind") == "asr",
                translate_to=request.query.get("tlang"),
            )
            xml = pages.timedtext_xml(snippets)
        return Reply(
            200,
            xml,
            _XML,
            behavior.outcome,
            video_id,
            delay=delay + _slow_delay(script),
        )

    def _oembed(self, request: Request) -> Reply:
        video_id = pages.oembed_video_id(request.query.get("url", ""))
        if video_id is None:
            return Reply(400, b"Bad Request", _HTML, "bad-request")
        if request.query.get("format", "json") != "json":
            return Reply(501, b"Not Implemented", _HTML, "bad-request", video_id)
        script = self._claim(Step.OEMBED, video_id, request.client_ip)
        behavior = script.behavior if script is not None else Behavior.OK
        if behavior is Behavior.UNAVAILABLE:
            return Reply(404, b"Not Found", _HTML, behavior.outcome, video_id)
        if behavior is Behavior.STALL:
            return Reply(0, b"", _HTML, behavior.outcome, video_id, stall=True)
        body = pages.oembed_json(self.video(video_id))
        return Reply(200, body, _JSON, behavior.outcome, video_id, delay=_slow_delay(script))

    def _sorry(self, request: Request) -> Reply:
        """google.com/sorry/index: the captcha page with 429, whoever asks (the block ends on
        the watch page, which stops redirecting)."""
        continue_url = request.query.get("continue", "")
        page = pages.sorry_page(continue_url, request.client_ip).encode()
        return Reply(429, page, _HTML, SORRY_OUTCOME, pages.sorry_video_id(request.query))

    def _encoded(self, request: Request, reply: Reply) -> Reply:
        """The reply as YouTube sends it: gzipped if the client accepts gzip, chunked."""
        if reply.stall or not reply.body:
            return reply
        if self.gzip and _accepts_gzip(request.accept_encoding):
            headers = (*reply.headers, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
            body = gzip_compress(reply.body, compresslevel=6, mtime=0)
            reply = dataclasses.replace(reply, body=body, headers=headers)
        return dataclasses.replace(reply, chunked=self.chunked)


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip``, ``x-gzip`` or ``*``, q > 0)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in {"gzip", "x-gzip", "*"}:
            continue
        name, _, value = params.strip().partition("=")
        try:
            return name.strip().lower() != "q" or float(value) > 0
        except ValueError:
            return False
    return False


def _redirect(location: str, behavior: Behavior, video_id: str) -> Reply:
    body = pages.moved_page(location).encode()
    return Reply(302, body, _HTML, behavior.outcome, video_id, (("Location", location),))


def _recorded_body(script: Script | None) -> bytes | None:
    """The recorded answer a script serves instead of the synthetic one, if it has one."""
    return script.body if script is not None else None


def _slow_delay(script: Script | None) -> float:
    return script.delay if script is not None and script.behavior is Behavior.SLOW else 0.0


def _not_found() -> Reply:
    return Reply(404, pages.error_page(404, "Not Found").encode(), _HTML, "not-found")


def _innertube_video_id(request: Request) -> str | None:
    """The videoId of a request shaped like the library's ANDROID player call, else None."""
    if not request.content_type.startswith("application/json"):
        return None
    try:
        payload = json.loads(request.body)
    except ValueError:
        return None
    context = payload.get("context") if isinstance(payload, dict) else None
    client = context.get("client") if isinstance(context, dict) else None
    if not isinstance(client, dict) or client.get("clientName") != "ANDROID":
        return None
    video_id = payload.get("videoId")
    return video_id if isinstance(video_id, str) else None
