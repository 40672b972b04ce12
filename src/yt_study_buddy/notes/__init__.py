"""Study notes: a transcript rendered in each output format, written to disk atomically, a
course folder's index, and search (a SQLite FTS5 index of the Markdown notes in an output directory)."""

from __future__ import annotations

from .._exceptions import SearchError, SearchQueryError
from .._fs import write_atomic
from ._files import course_folder_name, course_note_stem, note_stem, notes_in
from ._formatters import FORMATS, CourseContext, Provenance, render
from ._front_matter import read_front_matter
from ._index import INDEX_FILENAME, CourseIndex, EntryState, IndexEntry, render_index
from ._search import NoteIndex, ParsedNote, Passage, SearchHit, check_query, fts5_available, parse_note

__all__ = [
    "FORMATS",
    "INDEX_FILENAME",
    "CourseContext",
    "CourseIndex",
    "EntryState",
    "IndexEntry",
    "NoteIndex",
    "ParsedNote",
    "Passage",
    "Provenance",
    "SearchError",
    "SearchHit",
    "SearchQueryError",
    "check_query",
    "course_folder_name",
    "course_note_stem",
    "fts5_available",
    "note_stem",
    "notes_in",
    "parse_note",
    "read_front_matter",
    "render",
    "render_index",
    "write_atomic",
]
