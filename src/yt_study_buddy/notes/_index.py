"""A course's ``index.md``: the course at a glance, one numbered line per video in course order.

A pure function of typed values: the application decides each video's state and where its note
is; this module only renders. Links are relative to the course folder and percent-encoded
(spaces, brackets), so every Markdown viewer (GitHub, Obsidian, VS Code) follows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from ..youtube._courses import CourseKind
from ._formatters import _md_escape, clock

#: The index's file name in every course folder.
INDEX_FILENAME = "index.md"
#: What the course's URL is called in the index.
_URL_LABEL = {CourseKind.PLAYLIST: "Playlist", CourseKind.CHANNEL: "Uploads"}


class EntryState(StrEnum):
    """A video's state as the index shows it."""

    FETCHED = "fetched"
    FAILED = "failed"
    #: Not fetched yet: the run was interrupted first (a re-run picks it up).
    PENDING = "pending"


@dataclass(frozen=True)
class IndexEntry:
    """One video of the course; ``note`` is its note's file name in the course folder, if any."""

    position: int
    video_id: str
    title: str | None
    duration: float | None
    state: EntryState
    note: str | None = None
    #: Why it failed or is pending: one line.
    reason: str | None = None


@dataclass(frozen=True)
class CourseIndex:
    title: str
    kind: CourseKind
    url: str
    channel: str | None
    entries: Sequence[IndexEntry]


def render_index(index: CourseIndex) -> str:
    """The ``index.md`` of a course folder."""
    entries = list(index.entries)
    lines = [f"# {_md_escape(index.title)}", ""]
    if index.channel:
        lines.append(f"- **Channel:** {_md_escape(index.channel)}")
    lines += [
        f"- **{_URL_LABEL[index.kind]}:** <{index.url}>",
        f"- **Videos:** {len(entries)}{_counts(entries)}",
        f"- **Total duration:** {_total(entries)}",
        "",
    ]
    lines += [_line(entry) for entry in entries]
    return "\n".join(lines) + "\n"


def note_link(name: str) -> str:
    """A relative link target for a note file name: percent-encoded, so spaces and brackets hold."""
    return quote(name, safe="")


def _line(entry: IndexEntry) -> str:
    """``7. [Title](<link>) — 12:34``, then ``— **failed**: why`` or ``— *pending*: why``. The
    number is the video's place in the whole course (a Markdown viewer renumbers gaps that an
    ``-I`` selection leaves; the note's file name keeps it)."""
    title = _md_escape(entry.title or entry.video_id)
    text = f"[{title}]({note_link(entry.note)})" if entry.note else title
    parts = [f"{entry.position}. {text}", clock(entry.duration) if entry.duration is not None else "?"]
    if entry.state is not EntryState.FETCHED:
        mark = "**failed**" if entry.state is EntryState.FAILED else "*pending*"
        parts.append(f"{mark}: {_md_escape(entry.reason)}" if entry.reason else mark)
    return " — ".join(parts)


def _counts(entries: Sequence[IndexEntry]) -> str:
    failed = sum(e.state is EntryState.FAILED for e in entries)
    pending = sum(e.state is EntryState.PENDING for e in entries)
    if not failed and not pending:
        return ""
    fetched = len(entries) - failed - pending
    return f" ({fetched} fetched, {failed} failed, {pending} pending)"


def _total(entries: Sequence[IndexEntry]) -> str:
    known = [e.duration for e in entries if e.duration is not None]
    total = clock(sum(known))
    unknown = len(entries) - len(known)
    return f"{total} (and {unknown} of unknown length)" if unknown else total
