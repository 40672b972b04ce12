"""Study notes: a transcript rendered in each output format, written to disk atomically, and
searched (a SQLite FTS5 index of the Markdown notes in an output directory)."""

from __future__ import annotations

from .._exceptions import SearchError, SearchQueryError
from .._fs import write_atomic
from ._files import note_stem
from ._formatters import FORMATS, Provenance, render
from ._search import NoteIndex, ParsedNote, Passage, SearchHit, check_query, fts5_available, parse_note

__all__ = [
    "FORMATS",
    "NoteIndex",
    "ParsedNote",
    "Passage",
    "Provenance",
    "SearchError",
    "SearchHit",
    "SearchQueryError",
    "check_query",
    "fts5_available",
    "note_stem",
    "parse_note",
    "render",
    "write_atomic",
]
