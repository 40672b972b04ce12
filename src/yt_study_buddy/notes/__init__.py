"""Study notes: a transcript rendered in each output format, written to disk atomically, and a
course folder's index."""

from __future__ import annotations

from .._fs import write_atomic
from ._files import course_folder_name, course_note_stem, note_stem
from ._formatters import FORMATS, Provenance, render
from ._index import INDEX_FILENAME, CourseIndex, EntryState, IndexEntry, render_index

__all__ = [
    "FORMATS",
    "INDEX_FILENAME",
    "CourseIndex",
    "EntryState",
    "IndexEntry",
    "Provenance",
    "course_folder_name",
    "course_note_stem",
    "note_stem",
    "render",
    "render_index",
    "write_atomic",
]
