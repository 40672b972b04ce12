"""Turn what users paste (URLs of every YouTube form, bare ids, lists of them) into video ids.

Strict on purpose: the old project accepted any URL with a ``v=`` and missed ``/shorts/`` and
``/live/``, so bad input either vanished or fetched the wrong thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .._exceptions import InvalidVideoInput

_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_ID_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_TRAILING_COMMENT = re.compile(r"\s+#.*$")

_YOUTUBE_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "youtube-nocookie.com",
        "www.youtube-nocookie.com",
    }
)
_SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
# Paths of the form /<prefix>/<id>.
_ID_PATH_PREFIXES = frozenset({"shorts", "embed", "live", "v", "e"})

_WATCH_URL = "https://www.youtube.com/watch?v={video_id}"


@dataclass
class VideoList:
    """The videos of an input list, plus what was skipped and why (line numbers are 1-based)."""

    ids: list[str] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)


def parse_video_id(text: str) -> str:
    """Return the 11-character video id in a URL or bare id, or raise `InvalidVideoInput`."""
    text = text.strip()
    if not text:
        raise InvalidVideoInput("empty input")
    if _ID.fullmatch(text):
        return text
    if _ID_ALPHABET.fullmatch(text):
        raise InvalidVideoInput(
            f"not a video id: {text!r} has {len(text)} characters, video ids have 11"
        )
    return _id_from_url(text)


def _id_from_url(text: str) -> str:
    url = text if "://" in text else "https://" + text.removeprefix("//")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError as exc:  # e.g. an unclosed "[" in the host
        raise InvalidVideoInput(f"not a YouTube URL: {text!r} ({exc})") from exc
    if parts.scheme not in ("http", "https") or not (host in _YOUTUBE_HOSTS or host in _SHORT_HOSTS):
        raise InvalidVideoInput(f"not a YouTube URL: {text!r}")

    segments = [s for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)
    if host in _SHORT_HOSTS:
        if len(segments) != 1:
            raise InvalidVideoInput(f"no video id in URL: {text!r}")
        return _checked(segments[0], text)
    if segments == ["watch"] and "v" in query:
        return _checked(query["v"][0], text)
    if len(segments) == 2 and segments[0] in _ID_PATH_PREFIXES and segments[1] != "videoseries":
        return _checked(segments[1], text)
    if "list" in query:
        raise InvalidVideoInput(
            f"playlist URLs are not supported yet; list the videos instead: {text!r}"
        )
    raise InvalidVideoInput(f"not a video URL: {text!r}")


def _checked(candidate: str, text: str) -> str:
    if not _ID.fullmatch(candidate):
        raise InvalidVideoInput(
            f"invalid video id {candidate!r} in URL {text!r} (video ids have 11 characters)"
        )
    return candidate


def read_video_list(lines: Iterable[str]) -> VideoList:
    """Parse a list of videos, one per line; ``#`` comments and blank lines are skipped.

    Bad lines are collected rather than raised, so one typo does not hide the other errors.
    """
    result = VideoList()
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip("\r\n")
        # A comment needs whitespace before "#", so URL fragments like "#t=30" survive.
        text = _TRAILING_COMMENT.sub("", raw.lstrip("\ufeff")).strip()
        if not text or text.startswith("#"):
            continue
        try:
            video_id = parse_video_id(text)
        except InvalidVideoInput as exc:
            result.errors.append((number, raw, str(exc)))
            continue
        if video_id in seen:
            result.duplicates.append((number, video_id))
        else:
            seen.add(video_id)
            result.ids.append(video_id)
    return result


def watch_url(video_id: str, at_seconds: float | None = None) -> str:
    """The canonical watch URL, optionally starting at a whole second."""
    url = _WATCH_URL.format(video_id=video_id)
    if at_seconds is not None:
        url += f"&t={max(0, int(at_seconds))}s"
    return url
