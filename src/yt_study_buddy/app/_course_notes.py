"""Courses on disk: where each video's note goes, and each course folder's ``index.md``.

A playlist's notes go to ``<output>/<title> [<playlist id>]/``, a channel's to
``<output>/<channel> [<@handle or UC id>]/``, each named ``NNN - <title> [<video id>].md`` by its
place in the course. A video in two courses is fetched once and written into both folders
(rendered for each from the one transcript in hand; a video done in an earlier run is copied
from its note), so each folder stands on its own: it can be moved, shared or opened as a vault.
The index is rewritten at the end of every run, interrupted or not, from what the run did and
what the folder already holds: a re-run after the playlist grew lists the new videos too, and
notes whose place changed (a video inserted before them) are renamed to their new number.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._fs import write_atomic
from ..notes._files import course_folder_name, course_note_stem, notes_in
from ..notes._formatters import CourseContext, with_course
from ..notes._index import INDEX_FILENAME, CourseIndex, EntryState, IndexEntry, render_index
from ..youtube._courses import Course, CourseKind
from ._run_log import VideoResult, VideoStatus

log = logging.getLogger(__name__)

#: Course positions are zero-padded to at least this many digits (``007 - ...``).
MIN_POSITION_DIGITS = 3


@dataclass(frozen=True)
class CoursePlace:
    """A video's place in one course: where its note is written, and (``context``) what its
    front matter says about the course."""

    kind: CourseKind
    course_id: str
    course_title: str
    #: The course folder's name in the output directory.
    folder: str
    #: 1-based place in the whole course.
    position: int
    #: Digits the position is padded to in file names.
    width: int
    #: The video's title as the course lists it: its note's name, so a later run names it alike.
    title: str | None = None

    def stem(self, title: str | None, video_id: str) -> str:
        """The note's file name without its extension (``title`` when the course names none)."""
        return course_note_stem(self.position, self.width, self.title or title, video_id)

    @property
    def context(self) -> CourseContext:
        """The course as the note's front matter names it (``playlist``, ``position``)."""
        return CourseContext(title=self.course_title, id=self.course_id, position=self.position, kind=self.kind)


#: Where one video's notes go: a course's folder, or (None) the output directory itself.
NotePlace = CoursePlace | None


def course_folder(course: Course) -> str:
    """The course folder's name: its title, then its playlist id, or the channel's handle (else id)."""
    key = course.handle if course.kind is CourseKind.CHANNEL and course.handle else course.id
    return course_folder_name(course.title, key)


def course_places(course: Course) -> list[tuple[str, CoursePlace]]:
    """(video id, context) for each entry of ``course``, in course order."""
    width = max(MIN_POSITION_DIGITS, len(str(max((e.position for e in course.entries), default=1))))
    folder = course_folder(course)
    return [
        (
            entry.video_id,
            CoursePlace(course.kind, course.id, course.title, folder, entry.position, width, entry.title),
        )
        for entry in course.entries
    ]


def note_places(courses: Sequence[Course], singles: Sequence[str] | None = None) -> dict[str, tuple[NotePlace, ...]]:
    """Every place a video's notes go. A video given on its own goes to the output directory; a
    course's to its folder, once per place it has there (a playlist may list a video twice).
    ``singles`` None: every video not in a course was given on its own."""
    places: dict[str, list[NotePlace]] = {}
    for course in courses:
        for video_id, context in course_places(course):
            places.setdefault(video_id, []).append(context)
    for video_id in singles or ():
        places.setdefault(video_id, []).insert(0, None)
    return {video_id: tuple(where) for video_id, where in places.items()}


def write_course_indexes(
    output_dir: Path,
    courses: Sequence[Course],
    results: Mapping[str, VideoResult],
    known_notes: Callable[[str], list[Path]],
) -> list[Path]:
    """Write each course's ``index.md`` (atomically); returns their paths.

    A video done before (skipped) whose note is not yet in this course's folder, say it was
    fetched with another course, is copied in first. ``known_notes`` gives a video's existing
    note files wherever they are. OSError propagates (the caller reports it).
    """
    written = []
    for course in courses:
        folder = output_dir / course_folder(course)
        folder.mkdir(parents=True, exist_ok=True)
        present = notes_in(folder)
        counts = Counter(course.video_ids)
        entries = []
        for (video_id, place), entry in zip(course_places(course), course.entries, strict=True):
            result = results.get(video_id)
            done = result is not None and result.status in (VideoStatus.FETCHED, VideoStatus.SKIPPED)
            stem = place.stem(None, video_id)
            if done and video_id not in present:
                present[video_id] = _copy_in(known_notes(video_id), folder, stem, place.context)
            elif counts[video_id] == 1 and video_id in present:
                present[video_id] = _renamed(present[video_id], folder, stem)
            entries.append(
                IndexEntry(
                    position=entry.position,
                    video_id=video_id,
                    title=entry.title or (result.title if result else None),
                    duration=entry.duration,
                    state=_state(result),
                    note=_link_target(present.get(video_id, []), stem),
                    reason=None if done or result is None else result.error,
                )
            )
        index = CourseIndex(course.title, course.kind, course.url, course.channel, entries)
        path = folder / INDEX_FILENAME
        write_atomic(path, render_index(index))
        written.append(path)
    return written


def _state(result: VideoResult | None) -> EntryState:
    if result is None or result.status is VideoStatus.PENDING:
        return EntryState.PENDING
    if result.status is VideoStatus.FAILED:
        return EntryState.FAILED
    return EntryState.FETCHED


def _copy_in(sources: list[Path], folder: Path, stem: str, course: CourseContext) -> list[Path]:
    """Copy a video's notes (one per format) into ``folder`` under ``stem``; a Markdown copy's
    front matter names this course and its place in it."""
    copies = []
    for source in sources:
        target = folder / f"{stem}{source.suffix}"
        if source.resolve() != target.resolve():
            text = source.read_text(encoding="utf-8")
            write_atomic(target, with_course(text, course) if source.suffix == ".md" else text)
        copies.append(target)
    return copies


def _renamed(notes: list[Path], folder: Path, stem: str) -> list[Path]:
    """A video's notes moved to the name its place gives them now (a channel's new upload
    shifts every position), so the folder lists the course in order. Left alone when two
    share a format: which one would it be? The run log finds renamed notes by their id."""
    suffixes = [path.suffix for path in notes]
    if len(set(suffixes)) != len(suffixes):
        return notes
    moved = []
    for path in notes:
        target = folder / f"{stem}{path.suffix}"
        if path != target and not target.exists():
            os.replace(path, target)
            path = target
        moved.append(path)
    return moved


def _link_target(notes: list[Path], stem: str) -> str | None:
    """The note the index links to: the Markdown one, else any; the expected name first."""
    if not notes:
        return None
    ranked = sorted(notes, key=lambda p: (p.suffix != ".md", p.stem != stem, p.name))
    return ranked[0].name
