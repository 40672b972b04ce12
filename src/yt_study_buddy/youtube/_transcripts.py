"""Fetch one transcript (and the video's title) over a caller-configured `requests.Session`.

This module knows nothing about Tor: the session it is handed already carries the proxy, the
test CA and default timeouts. Every failure leaves as a classified `FetchFailure`.

Title, channel, length and description come from answers the transcript fetch receives anyway:
the InnerTube player answer's ``videoDetails``, else the watch page's ``ytInitialPlayerResponse``.
The library does not expose either, so a response hook keeps them while it runs. Only if neither
names a title does one more request go out (oEmbed). The chapters come from the same watch page
(see ``_chapters``).
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from youtube_transcript_api import YouTubeTranscriptApi

from ._chapters import Chapter, extract_chapters
from ._failures import classify_failure
from ._video_ids import watch_url

logger = logging.getLogger(__name__)

_OEMBED_URL = "https://www.youtube.com/oembed"
_PLAYER_PATH = "/youtubei/v1/player"
_WATCH_PATH = "/watch"
_INITIAL_PLAYER_RESPONSE = re.compile(r"\bytInitialPlayerResponse\s*=\s*")


@dataclass(frozen=True)
class Snippet:
    """One caption cue: its text, when it appears and how long it stays on screen (seconds)."""

    text: str
    start: float
    duration: float


@dataclass(frozen=True)
class VideoInfo:
    """What YouTube says about the video. ``duration`` is whole seconds (None if unknown)."""

    title: str
    channel: str | None
    duration: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Transcript:
    """A fetched transcript with what a study note needs to say where it came from."""

    video_id: str
    language: str
    language_code: str
    is_generated: bool
    snippets: tuple[Snippet, ...]
    title: str | None = None
    channel: str | None = None
    #: Language code of the track it was machine-translated from, if it was.
    translated_from: str | None = None
    #: The video's length as YouTube states it (videoDetails.lengthSeconds), if it did.
    video_duration: int | None = None
    description: str | None = None
    #: The video's chapters in order (none: the note is one transcript, as before).
    chapters: tuple[Chapter, ...] = ()

    @property
    def duration(self) -> float:
        """The video's length in seconds: YouTube's figure if known, else until the end of
        the last snippet (0 for an empty transcript)."""
        if self.video_duration:
            return float(self.video_duration)
        if not self.snippets:
            return 0.0
        last = self.snippets[-1]
        return last.start + last.duration

    @property
    def text(self) -> str:
        """All snippet texts joined by spaces."""
        return " ".join(snippet.text for snippet in self.snippets)


def fetch_transcript(
    session: requests.Session,
    video_id: str,
    *,
    languages: Sequence[str] = ("en",),
    translate_to: str | None = None,
    preserve_formatting: bool = False,
    with_info: bool = True,
) -> Transcript:
    """Fetch the first available transcript in ``languages`` (manual before generated).

    With ``translate_to``, the found track is machine-translated unless it already is in that
    language. ``with_info`` allows the oEmbed request when the fetch's own answers name no
    title. Raises `FetchFailure`; anything it cannot classify is a bug and propagates as is.
    """
    answers = _Answers()
    try:
        with answers.kept_from(session):
            # A fresh API object per call: it is not thread-safe. No proxy_config: the session
            # is already configured, and the library would replace its proxies.
            api = YouTubeTranscriptApi(http_client=session)
            found = api.list(video_id).find_transcript(languages)
            translated_from = None
            if translate_to is not None and found.language_code != translate_to:
                translated_from = found.language_code
                found = found.translate(translate_to)
            fetched = found.fetch(preserve_formatting=preserve_formatting)
    except Exception as exc:
        raise classify_failure(exc, video_id) from exc

    info = answers.video_info(video_id)
    if info is None and with_info:
        info = fetch_video_info(session, video_id)
    description = info.description if info else None
    duration = info.duration if info else None
    return Transcript(
        video_id=video_id,
        language=fetched.language,
        language_code=fetched.language_code,
        is_generated=fetched.is_generated,
        snippets=tuple(Snippet(s.text, s.start, s.duration) for s in fetched.snippets),
        title=info.title if info else None,
        channel=info.channel if info else None,
        translated_from=translated_from,
        video_duration=duration,
        description=description,
        chapters=extract_chapters(answers.watch_page(), description=description, duration=duration),
    )


class _Answers:
    """The last watch page and player answer (200s) the library received on a session.

    A response hook rather than a wrapper around the session: the library gets the caller's
    own Session, and nothing is read until the fetch is over (the bodies are loaded by then).
    """

    def __init__(self) -> None:
        self.watch: requests.Response | None = None
        self.player: requests.Response | None = None

    @contextmanager
    def kept_from(self, session: requests.Session) -> Iterator[None]:
        # The hook holds the answers weakly. Each request keeps its own list of hooks, so a
        # strong one made a cycle (answers -> response -> request -> hook -> answers) that only
        # the cyclic GC frees: a long run held hundreds of videos' bodies and zlib decoders.
        keep = weakref.WeakMethod(self._keep)

        def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            method = keep()
            if method is not None:
                method(response)

        session.hooks["response"].append(hook)
        try:
            yield
        finally:
            session.hooks["response"].remove(hook)

    def _keep(self, response: requests.Response) -> None:
        if response.status_code != 200:
            return
        path = urlsplit(response.url).path
        if path == _PLAYER_PATH:
            self.player = response
        elif path == _WATCH_PATH:
            self.watch = response

    def video_info(self, video_id: str) -> VideoInfo | None:
        """From the player's videoDetails, else from the watch page's; None if neither has a title."""
        for source, details in (("player", self._player_details()), ("watch page", self._watch_details())):
            info = _video_info(details, video_id)
            if info is not None:
                return info
            logger.debug("no title for %s in the %s", video_id, source)
        return None

    def _player_details(self) -> object:
        if self.player is None:
            return None
        try:
            answer = json.loads(self.player.content)
        except ValueError:
            return None
        return answer.get("videoDetails") if isinstance(answer, dict) else None

    def watch_page(self) -> str | None:
        """The watch page's HTML, if one came."""
        if self.watch is None:
            return None
        return self.watch.content.decode("utf-8", errors="replace")  # YouTube's pages are UTF-8

    def _watch_details(self) -> object:
        """``videoDetails`` of the ``var ytInitialPlayerResponse = {...};`` the page embeds."""
        page = self.watch_page()
        if page is None:
            return None
        match = _INITIAL_PLAYER_RESPONSE.search(page)
        if match is None:
            return None
        try:
            answer, _ = json.JSONDecoder().raw_decode(page, match.end())
        except ValueError:
            return None
        return answer.get("videoDetails") if isinstance(answer, dict) else None


def _video_info(details: object, video_id: str) -> VideoInfo | None:
    """A `VideoInfo` from a videoDetails object about ``video_id`` that has a title."""
    if not isinstance(details, dict) or details.get("videoId", video_id) != video_id:
        return None
    title = _text(details.get("title"))
    if title is None:
        return None
    length = details.get("lengthSeconds")
    seconds = int(length) if isinstance(length, str) and length.isdigit() else None
    return VideoInfo(
        title=title,
        channel=_text(details.get("author")),
        duration=seconds or None,  # live streams say "0"
        description=_text(details.get("shortDescription")),
    )


def _text(value: object) -> str | None:
    """A stripped non-empty string, or None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def fetch_video_info(session: requests.Session, video_id: str) -> VideoInfo | None:
    """Title and channel from YouTube's oEmbed endpoint, or None if that fails (never fatal).

    The fallback when the fetch's own answers name no title; called after the transcript so it
    rides the same keep-alive connection to www.youtube.com.
    """
    try:
        response = session.get(_OEMBED_URL, params={"url": watch_url(video_id), "format": "json"})
        response.raise_for_status()
        data = response.json()
    except Exception as exc:
        failure = classify_failure(exc, video_id)  # re-raises programming errors
        logger.debug("no title for %s: %s (%s)", video_id, failure.reason, failure)
        return None
    title = data.get("title") if isinstance(data, dict) else None
    if not isinstance(title, str) or not title.strip():
        logger.debug("no title for %s: oEmbed answer has no title", video_id)
        return None
    channel = data.get("author_name")
    return VideoInfo(title=title.strip(), channel=channel.strip() if isinstance(channel, str) else None)
