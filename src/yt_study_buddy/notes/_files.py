"""Name note files: safe on every filesystem, one name per video (written with ``write_atomic``).

Every stem ends in ``[<video_id>]``, so two videos with the same title never overwrite each
other and finished videos can be found (and skipped) by id whatever their title became.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

#: Longest stem in UTF-8 bytes, suffix included; leaves room for an extension and a temp prefix
#: under the common 255-byte name limit, and keeps Windows paths short.
MAX_STEM_BYTES = 100

_REPLACEMENTS = str.maketrans(
    {":": " - ", "/": "-", "\\": "-", "|": "-", '"': "'", "<": " ", ">": " ", "?": None, "*": None}
)
_SPACES = re.compile(r" {2,}")
#: A note file's name: ``... [<video id>].<format>``.
_NOTE_NAME = re.compile(r"\[(?P<id>[0-9A-Za-z_-]{11})\]\.[a-z0-9]+$")
_WINDOWS_RESERVED = re.compile(r"(?:CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])", re.IGNORECASE)


def note_stem(title: str | None, video_id: str, *, prefix: str = "") -> str:
    """``"<prefix><Safe Title> [<video_id>]"``; when nothing of the title survives, just the id
    (``"<prefix>[<video_id>]"`` with a prefix). ``prefix`` must be safe already (``"007 - "``)."""
    suffix = f" [{video_id}]"
    safe = _safe_title(title or "", MAX_STEM_BYTES - len(suffix.encode()) - len(prefix.encode()))
    if safe:
        return f"{prefix}{safe}{suffix}"
    return f"{prefix}[{video_id}]" if prefix else video_id


def course_note_stem(position: int, width: int, title: str | None, video_id: str) -> str:
    """``"NNN - <Safe Title> [<video_id>]"``: a course's note, sorted by its place in the course
    (``position`` zero-padded to ``width`` digits, so file browsers list the course in order)."""
    return note_stem(title, video_id, prefix=f"{position:0{width}d} - ")


def course_folder_name(title: str | None, key: str) -> str:
    """``"<Safe Title> [<key>]"``: a course's folder, ``key`` its playlist id or channel handle."""
    return note_stem(title, key)


def _safe_title(title: str, max_bytes: int) -> str:
    text = unicodedata.normalize("NFC", title).translate(_REPLACEMENTS)
    # Whitespace of every kind becomes a space; control and format characters (bidi overrides,
    # zero-width joiners) go, since they can hide or reorder what a name shows.
    text = "".join(
        " " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    text = _SPACES.sub(" ", text)
    text = text.encode()[:max_bytes].decode(errors="ignore")  # never cut a character in half
    text = text.strip(" .")  # Windows drops trailing dots and spaces; leading dots hide files
    if not text.strip("-' "):  # only what the replacements left behind
        return ""
    if _WINDOWS_RESERVED.fullmatch(text.split(".", 1)[0].rstrip()):
        text = "_" + text  # "NUL.tar [id]" is still the NUL device on older Windows
    return text


def notes_in(folder: Path) -> dict[str, list[Path]]:
    """The notes a folder holds, by video id: found by the ``[<id>]`` their names end in,
    whatever their title or position became. A missing folder holds none."""
    found: dict[str, list[Path]] = {}
    try:
        paths = sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return found
    for path in paths:
        match = _NOTE_NAME.search(path.name)
        if match and not path.name.startswith(".") and path.is_file():
            found.setdefault(match["id"], []).append(path)
    return found
