"""Courses: a playlist or a channel's videos, expanded to its videos in order with yt-dlp.

yt-dlp's YouTube tab extractor does the reading (the ``ytInitialData`` page, the InnerTube
``browse`` continuations) in ``extract_flat`` mode, so no video page is loaded. Every one of its
requests goes through the ``requests.Session`` handed in (see ``_ytdlp``): this module knows
nothing about how that session reaches YouTube. Every failure leaves as a classified
`FetchFailure`, like a transcript fetch's, so the caller can retry a block on a fresh exit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests

from ._failures import FailureKind, FetchFailure, classify_failure

log = logging.getLogger(__name__)

#: Read timeout of each of yt-dlp's requests (seconds); the session adds its connect timeout.
REQUEST_TIMEOUT = 30.0
#: Playlist ids by their prefixes (yt-dlp's list, less the account-only WL/LL/LM lists).
PLAYLIST_ID_RE = re.compile(r"(?:PL|LL|EC|UU|FL|RD|UL|TL|PU|OLAK5uy_)[0-9A-Za-z_-]{10,}")


class CourseKind(StrEnum):
    PLAYLIST = "playlist"
    #: A channel's uploads: the videos of its Videos tab, newest first as YouTube lists them.
    CHANNEL = "channel"


@dataclass(frozen=True)
class CourseRef:
    """A course as the user named it. ``id`` is the playlist id, or for a channel how its URL
    names it: ``@handle``, ``UC...``, ``c/NAME`` or ``user/NAME``."""

    kind: CourseKind
    id: str

    @property
    def url(self) -> str:
        """The URL yt-dlp is given: a channel's Videos tab, so its uploads come as one list."""
        if self.kind is CourseKind.PLAYLIST:
            return f"https://www.youtube.com/playlist?list={self.id}"
        path = self.id if self.id.startswith(("@", "c/", "user/")) else f"channel/{self.id}"
        return f"https://www.youtube.com/{path}/videos"

    def __str__(self) -> str:
        return f"{self.kind.value} {self.id}"


@dataclass(frozen=True)
class CourseEntry:
    """One video of a course; ``position`` is its 1-based place in the whole course."""

    video_id: str
    title: str | None
    duration: float | None
    position: int


@dataclass(frozen=True)
class Course:
    """An expanded course: what the batch needs to fetch it and, later, to index it."""

    kind: CourseKind
    #: The playlist id, or the channel's UC... id.
    id: str
    title: str
    channel: str | None
    #: The channel's @handle, when YouTube gave it.
    handle: str | None
    url: str
    #: The videos in course order (only the selected ones with ``-I``).
    entries: tuple[CourseEntry, ...]

    @property
    def video_ids(self) -> list[str]:
        return [entry.video_id for entry in self.entries]


def check_playlist_items(spec: str) -> str:
    """Return ``spec`` if yt-dlp takes it as an ``-I`` selection (``1-10,15``, ``-5:``, ``::2``),
    else raise ``ValueError`` saying which part is wrong. Checked before tor is even asked."""
    from ._ytdlp import parse_playlist_items

    if not spec.strip():
        raise ValueError("the selection is empty")
    parse_playlist_items(spec)
    return spec


def expand_course(
    session: requests.Session,
    ref: CourseRef,
    *,
    playlist_items: str | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> Course:
    """The course's videos in order, every page of them, over ``session`` only.

    ``playlist_items`` selects like yt-dlp's ``-I`` (positions stay those of the whole course).
    Raises `FetchFailure`: BLOCKED when YouTube blocked the session's exit (nothing more was
    sent after the block), RETRYABLE for transport trouble and odd answers, PERMANENT when the
    playlist does not exist or is private, or the channel is unknown.
    """
    from . import _ytdlp  # yt-dlp takes most of a second to import: only when a course is given

    extraction = _ytdlp.Extraction(session, timeout=timeout, playlist_items=playlist_items)
    try:
        info = extraction.extract(ref.url)
    except Exception as exc:
        raise _failure(exc, extraction, ref) from exc
    return _course(ref, info)


def _failure(exc: BaseException, extraction: Any, ref: CourseRef) -> FetchFailure:
    """Classify a failed extraction. The handler's own record comes first: it saw the block
    or the transport error before yt-dlp wrapped it. Unknown exceptions are re-raised."""
    if extraction.failure is not None:
        cause = extraction.failure
        return cause if isinstance(cause, FetchFailure) else classify_failure(cause, ref.id)
    status = extraction.http_status(exc)
    if status in (404, 410):
        return _made(FailureKind.PERMANENT, "course_not_found", ref, f"YouTube knows no {ref} (HTTP {status})", exc)
    if status is not None:
        kind = FailureKind.RETRYABLE
        return _made(kind, "server_error" if status >= 500 else "http_error", ref, f"HTTP {status} on {ref}", exc)
    message = extraction.expected_message(exc)
    if message is not None:
        return _made(FailureKind.PERMANENT, "course_unavailable", ref, message, exc)
    if extraction.is_extraction_error(exc):
        return _made(
            FailureKind.RETRYABLE,
            "unexpected_response",
            ref,
            f"YouTube's answer for {ref} could not be read: {extraction.message(exc)}",
            exc,
        )
    raise exc


def _made(kind: FailureKind, reason: str, ref: CourseRef, message: str, cause: BaseException) -> FetchFailure:
    failure = FetchFailure(kind, reason, ref.id, message)
    failure.__cause__ = cause
    return failure


def _course(ref: CourseRef, info: dict[str, Any]) -> Course:
    found = list(info.get("entries") or ())
    # With a selection yt-dlp lists the positions it took, in the order it took them.
    positions = info.get("requested_entries")
    if not isinstance(positions, list) or len(positions) != len(found):
        positions = list(range(1, len(found) + 1))
    entries = []
    for position, entry in zip(positions, found, strict=True):
        video_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(video_id, str):
            continue
        duration = entry.get("duration")
        entries.append(
            CourseEntry(
                video_id=video_id,
                title=entry.get("title") if isinstance(entry.get("title"), str) else None,
                duration=float(duration) if isinstance(duration, (int, float)) else None,
                position=int(position),
            )
        )
    channel = info.get("channel") or info.get("uploader")
    if ref.kind is CourseKind.CHANNEL:
        course_id = info.get("channel_id") or info.get("id") or ref.id
        title = channel or _without_tab(info.get("title")) or ref.id
    else:
        course_id = info.get("id") or ref.id
        title = info.get("title") or ref.id
    return Course(
        kind=ref.kind,
        id=str(course_id),
        title=str(title),
        channel=channel,
        handle=info.get("uploader_id") if str(info.get("uploader_id", "")).startswith("@") else None,
        url=ref.url,
        entries=tuple(entries),
    )


def _without_tab(title: object) -> str | None:
    """yt-dlp names a channel's tab "<channel> - Videos"."""
    return title.removesuffix(" - Videos") if isinstance(title, str) else None
