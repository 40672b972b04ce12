"""Study notes: a transcript rendered in each output format, written to disk atomically, and a
course folder's index."""

from __future__ import annotations

from .._fs import write_atomic
from ._files import course_folder_name, course_note_stem, note_stem, notes_in
from ._formatters import FORMATS, CourseContext, Provenance, render
from ._front_matter import read_front_matter
from ._index import INDEX_FILENAME, CourseIndex, EntryState, IndexEntry, render_index

__all__ = [
    "FORMATS",
    "INDEX_FILENAME",
    "CourseContext",
    "CourseIndex",
    "EntryState",
    "IndexEntry",
    "Provenance",
    "course_folder_name",
    "course_note_stem",
    "note_stem",
    "notes_in",
    "read_front_matter",
    "render",
    "render_index",
    "write_atomic",
]
