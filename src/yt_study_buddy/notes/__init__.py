"""Study notes: a transcript rendered in each output format, written to disk atomically."""

from __future__ import annotations

from .._fs import write_atomic
from ._files import note_stem
from ._formatters import FORMATS, CourseContext, Provenance, render
from ._front_matter import read_front_matter

__all__ = ["FORMATS", "CourseContext", "Provenance", "note_stem", "read_front_matter", "render", "write_atomic"]
