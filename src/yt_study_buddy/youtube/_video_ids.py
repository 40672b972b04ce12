"""Turn what users paste (URLs of every YouTube form, bare ids, lists of them) into video ids
and courses (playlists and channels, expanded later by ``_courses``).

Strict on purpose: a loose match on ``v=`` would miss ``/shorts/`` and ``/live/`` and let bad
input vanish or fetch the wrong thing. A watch URL with ``list=``
follows yt-dlp: the playlist, unless ``playlists=False`` (``--no-playlist``) asks for the video.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, urlsplit

from .._exceptions import InvalidVideoInput
from ._courses import PLAYLIST_ID_RE, CourseKind, CourseRef

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
#: A channel's uploads: its page or its Videos tab, by handle, id, custom or legacy name.
_CHANNEL_PATH = re.compile(
    r"/(?:(?P<handle>@[^/]+)|channel/(?P<ucid>UC[A-Za-z0-9_-]{22})|(?P<named>(?:c|user)/[^/@]+))(?:/videos|/featured)?/?"
)
#: Any other tab of a channel, for a clear message.
_CHANNEL_TAB = re.compile(r"/(?:@[^/]+|channel/[^/]+|c/[^/]+|user/[^/]+)/(?P<tab>[^/]+)/?")

#: A parsed input line: a video id, or a course to expand.
Input = str | CourseRef


@dataclass
class VideoList:
    """The videos of an input list, plus what was skipped and why (line numbers are 1-based)."""

    ids: list[str] = field(default_factory=list)
    #: Videos and courses in input order (``ids`` holds only the videos).
    items: list[Input] = field(default_factory=list)
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
        raise InvalidVideoInput(f"not a video id: {text!r} has {len(text)} characters, video ids have 11")
    return _id_from_url(text)


def parse_input(text: str, *, playlists: bool = True) -> Input:
    """A video id, or the course (playlist, channel) a URL or bare playlist id names.

    ``playlists=False`` is yt-dlp's ``--no-playlist``: a watch URL with ``list=`` is its video.
    Raises `InvalidVideoInput` for anything else.
    """
    stripped = text.strip()
    if PLAYLIST_ID_RE.fullmatch(stripped):
        return CourseRef(CourseKind.PLAYLIST, stripped)
    if not stripped or _ID_ALPHABET.fullmatch(stripped):
        return parse_video_id(text)
    parts, host = _split_youtube_url(stripped)
    query = parse_qs(parts.query)
    segments = [s for s in parts.path.split("/") if s]
    video_id = _video_in(parts.path, segments, query, host)
    list_id = query.get("list", [""])[0]
    # Like yt-dlp, a list= that is no playlist id leaves a watch URL meaning its video.
    if list_id and (video_id is None or (playlists and PLAYLIST_ID_RE.fullmatch(list_id))):
        return CourseRef(CourseKind.PLAYLIST, _checked_playlist(list_id, stripped))
    if video_id is not None:
        return _checked(video_id, stripped)
    channel = _channel_in(parts.path) if host in _YOUTUBE_HOSTS else None
    if channel is not None:
        return channel
    tab = _CHANNEL_TAB.fullmatch(parts.path)
    if tab is not None:
        raise InvalidVideoInput(
            f"only a channel's uploads (its page or /videos) can be fetched, "
            f"not its {tab.group('tab')!r} tab: {stripped!r}"
        )
    return parse_video_id(text)  # its message says what is wrong


def _video_in(path: str, segments: list[str], query: dict[str, list[str]], host: str) -> str | None:
    """The (unchecked) video id a URL names, if it names one."""
    if host in _SHORT_HOSTS:
        return segments[0] if len(segments) == 1 else None
    if segments == ["watch"] and "v" in query:
        return query["v"][0]
    if len(segments) == 2 and segments[0] in _ID_PATH_PREFIXES and segments[1] != "videoseries":
        return segments[1]
    return None


def _channel_in(path: str) -> CourseRef | None:
    match = _CHANNEL_PATH.fullmatch(path)
    if match is None:
        return None
    name = match.group("handle") or match.group("ucid") or match.group("named")
    return CourseRef(CourseKind.CHANNEL, name)


def _checked_playlist(candidate: str, text: str) -> str:
    if not PLAYLIST_ID_RE.fullmatch(candidate):
        raise InvalidVideoInput(f"invalid playlist id {candidate!r} in URL {text!r}")
    return candidate


def _split_youtube_url(text: str) -> tuple[SplitResult, str]:
    url = text if "://" in text else "https://" + text.removeprefix("//")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError as exc:  # e.g. an unclosed "[" in the host
        raise InvalidVideoInput(f"not a YouTube URL: {text!r} ({exc})") from exc
    if parts.scheme not in ("http", "https") or not (host in _YOUTUBE_HOSTS or host in _SHORT_HOSTS):
        raise InvalidVideoInput(f"not a YouTube URL: {text!r}")
    return parts, host


def _id_from_url(text: str) -> str:
    parts, host = _split_youtube_url(text)
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
        raise InvalidVideoInput(f"a playlist URL, not a video URL: {text!r}")
    raise InvalidVideoInput(f"not a video URL: {text!r}")


def _checked(candidate: str, text: str) -> str:
    if not _ID.fullmatch(candidate):
        raise InvalidVideoInput(f"invalid video id {candidate!r} in URL {text!r} (video ids have 11 characters)")
    return candidate


def read_video_list(lines: Iterable[str], *, playlists: bool = True) -> VideoList:
    """Parse a list of videos and courses, one per line; ``#`` comments and blank lines are
    skipped (``playlists`` as in `parse_input`).

    Bad lines are collected rather than raised, so one typo does not hide the other errors.
    """
    result = VideoList()
    seen: set[Input] = set()
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip("\r\n")
        # A comment needs whitespace before "#", so URL fragments like "#t=30" survive.
        text = _TRAILING_COMMENT.sub("", raw.lstrip("\ufeff")).strip()
        if not text or text.startswith("#"):
            continue
        try:
            item = parse_input(text, playlists=playlists)
        except InvalidVideoInput as exc:
            result.errors.append((number, raw, str(exc)))
            continue
        if item in seen:
            result.duplicates.append((number, str(item)))
            continue
        seen.add(item)
        result.items.append(item)
        if isinstance(item, str):
            result.ids.append(item)
    return result


def watch_url(video_id: str, at_seconds: float | None = None) -> str:
    """The canonical watch URL, optionally starting at a whole second."""
    url = _WATCH_URL.format(video_id=video_id)
    if at_seconds is not None:
        url += f"&t={max(0, int(at_seconds))}s"
    return url
