"""Fetch one transcript (and the video's title) over a caller-configured `requests.Session`.

This module knows nothing about Tor: the session it is handed already carries the proxy, the
test CA and default timeouts. Every failure leaves as a classified `FetchFailure`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from youtube_transcript_api import YouTubeTranscriptApi

from ._failures import classify_failure
from ._video_ids import watch_url

logger = logging.getLogger(__name__)

_OEMBED_URL = "https://www.youtube.com/oembed"


@dataclass(frozen=True)
class Snippet:
    """One caption cue: its text, when it appears and how long it stays on screen (seconds)."""

    text: str
    start: float
    duration: float


@dataclass(frozen=True)
class VideoInfo:
    title: str
    channel: str | None


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

    @property
    def duration(self) -> float:
        """Seconds until the end of the last snippet (0 for an empty transcript)."""
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
    language. Raises `FetchFailure`; anything it cannot classify is a bug and propagates as is.
    """
    try:
        # A fresh API object per call: it is not thread-safe. No proxy_config: the session
        # is already configured, and the library would replace its proxies.
        found = YouTubeTranscriptApi(http_client=session).list(video_id).find_transcript(languages)
        translated_from = None
        if translate_to is not None and found.language_code != translate_to:
            translated_from = found.language_code
            found = found.translate(translate_to)
        fetched = found.fetch(preserve_formatting=preserve_formatting)
    except Exception as exc:
        raise classify_failure(exc, video_id) from exc

    info = fetch_video_info(session, video_id) if with_info else None
    return Transcript(
        video_id=video_id,
        language=fetched.language,
        language_code=fetched.language_code,
        is_generated=fetched.is_generated,
        snippets=tuple(Snippet(s.text, s.start, s.duration) for s in fetched.snippets),
        title=info.title if info else None,
        channel=info.channel if info else None,
        translated_from=translated_from,
    )


def fetch_video_info(session: requests.Session, video_id: str) -> VideoInfo | None:
    """Title and channel from YouTube's oEmbed endpoint, or None if that fails (never fatal).

    Called after the transcript so it rides the same keep-alive connection to www.youtube.com.
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
