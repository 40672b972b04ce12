"""A video's chapters, read from the watch page the transcript fetch loads anyway (no request).

Three sources, in yt-dlp's order (its ``_extract_chapters_*``): the player bar's chapters in
``ytInitialData`` (the uploader's, else YouTube's automatic ones), else the "key moments" panel
(``macroMarkersListRenderer``), else timestamp lines in the description (``0:00 Intro``). A
source counts only if what it gives is usable: titled, increasing, within the video. YouTube's
pages change without notice, so anything unexpected means no chapters from that source, never
an exception.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_INITIAL_DATA = re.compile(r"""(?:\bvar\s+ytInitialData|window\s*\[\s*["']ytInitialData["']\s*\])\s*=\s*""")
#: The player bar, below ``playerOverlays.playerOverlayRenderer``.
_PLAYER_BAR = ("decoratedPlayerBarRenderer", "decoratedPlayerBarRenderer", "playerBar")
#: The player bar's chapter lists by preference: the uploader's, then YouTube's automatic ones.
_MARKER_KEYS = ("DESCRIPTION_CHAPTERS", "AUTO_CHAPTERS")
_CLOCK = r"(?:\d+:)?\d{1,2}:\d{2}"
#: A description line that is a timestamp then a title (``0:00 - Intro``), or the other way.
_TIME_FIRST = re.compile(rf"\s*({_CLOCK})\b\W*\s(.+?)\s*")
_TIME_LAST = re.compile(rf"\s*(.+?)\W*\s({_CLOCK})\s*")
#: Description chapters: at least this many lines, the first at 0:00 (YouTube's own rule).
MIN_DESCRIPTION_CHAPTERS = 2


@dataclass(frozen=True)
class Chapter:
    """A chapter: its title and where it starts, in seconds from the start of the video."""

    title: str
    start: float


def extract_chapters(page: str | None, *, description: str | None, duration: float | None) -> tuple[Chapter, ...]:
    """The chapters of a watch page's ``ytInitialData``, else of the description; () if none.

    ``duration`` (seconds, None if unknown) bounds the starts; ``page`` None means no page."""
    data = initial_data(page) if page else None
    chapters = player_bar_chapters(data, duration) or macro_marker_chapters(data, duration)
    return chapters or description_chapters(description, duration)


def initial_data(page: str) -> dict[str, object] | None:
    """The ``ytInitialData`` object a watch page embeds, or None."""
    match = _INITIAL_DATA.search(page)
    if match is None:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(page, match.end())
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def player_bar_chapters(data: object, duration: float | None) -> tuple[Chapter, ...]:
    """The player bar's chapters: ``multiMarkersPlayerBarRenderer.markersMap`` (current pages),
    else ``chapteredPlayerBarRenderer.chapters`` (older ones)."""
    bar = _path(data, "playerOverlays", "playerOverlayRenderer", *_PLAYER_BAR)
    markers = {
        key: _path(entry, "value", "chapters")
        for entry in _dicts(_path(bar, "multiMarkersPlayerBarRenderer", "markersMap"))
        if isinstance(key := entry.get("key"), str)
    }
    lists = [markers.get(key) for key in _MARKER_KEYS]
    lists.append(_path(bar, "chapteredPlayerBarRenderer", "chapters"))
    for items in lists:
        renderers = [_path(item, "chapterRenderer") for item in _dicts(items)]
        chapters = _usable(
            ((_text(_path(r, "title")), _millis(_path(r, "timeRangeStartMillis"))) for r in renderers), duration
        )
        if chapters:
            return chapters
    return ()


def macro_marker_chapters(data: object, duration: float | None) -> tuple[Chapter, ...]:
    """The first engagement panel's ``macroMarkersListRenderer`` that gives chapters (its
    times as shown, like yt-dlp reads them)."""
    panels = _path(data, "engagementPanels")
    for panel in _dicts(panels):
        contents = _path(panel, "engagementPanelSectionListRenderer", "content", "macroMarkersListRenderer", "contents")
        markers = [_path(item, "macroMarkersListItemRenderer") for item in _dicts(contents)]
        chapters = _usable(
            ((_text(_path(m, "title")), _seconds(_text(_path(m, "timeDescription")))) for m in markers), duration
        )
        if chapters:
            return chapters
    return ()


def description_chapters(description: str | None, duration: float | None) -> tuple[Chapter, ...]:
    """Timestamp lines of the description, in its order: at least `MIN_DESCRIPTION_CHAPTERS`,
    the first at 0:00; lines out of order are skipped. Time first (``0:00 Intro``) is tried
    before time last (``Intro 0:00``)."""
    if not description:
        return ()
    lines = description.splitlines()
    time_first = [(m[2], _seconds(m[1])) for m in map(_TIME_FIRST.fullmatch, lines) if m]
    time_last = [(m[1], _seconds(m[2])) for m in map(_TIME_LAST.fullmatch, lines) if m]
    for found in (time_first, time_last):
        chapters = _usable(found, duration)
        if len(chapters) >= MIN_DESCRIPTION_CHAPTERS and chapters[0].start == 0:
            return chapters
    return ()


def _usable(candidates: Iterable[tuple[str | None, float | None]], duration: float | None) -> tuple[Chapter, ...]:
    """Titled chapters with strictly increasing starts before the video's end (if known); like
    yt-dlp, a candidate without a title or a start, out of order or too late is left out."""
    chapters: list[Chapter] = []
    for title, start in candidates:
        if (
            title is None
            or start is None
            or (chapters and start <= chapters[-1].start)
            or (duration is not None and start >= duration)
        ):
            logger.debug("chapter %r at %s left out", title, start)
            continue
        chapters.append(Chapter(" ".join(title.split()), start))
    if chapters:
        logger.debug("%d chapters: %s", len(chapters), ", ".join(c.title for c in chapters))
    return tuple(chapters)


def _path(value: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _dicts(value: object) -> Iterator[dict[str, object]]:
    """The dict items of a list (anything else: none)."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _text(value: object) -> str | None:
    """InnerTube text: ``{"simpleText": ...}`` or ``{"runs": [{"text": ...}, ...]}``; stripped, or None."""
    text = _path(value, "simpleText")
    if not isinstance(text, str):
        runs = list(_dicts(_path(value, "runs")))
        parts = [run.get("text") for run in runs]
        text = "".join(part for part in parts if isinstance(part, str)) if runs else None
    if not isinstance(text, str):
        return None
    return text.strip() or None


def _millis(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        millis = float(value)
    except ValueError:
        return None
    return millis / 1000 if 0 <= millis < float("inf") else None


def _seconds(clock: str | None) -> float | None:
    """``h:mm:ss`` or ``m:ss`` as seconds, or None."""
    if clock is None or not re.fullmatch(_CLOCK, clock):
        return None
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return float(seconds)
