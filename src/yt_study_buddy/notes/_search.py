"""Full-text search over the Markdown notes of one output directory (SQLite FTS5).

The index is derived data: every row comes from a note file on disk, so it can always be
rebuilt (``rebuild``), and ``refresh`` brings it in line with the files (new, edited and
deleted notes, found by size and modification time) before each search. The batch adds each
note as it writes it (``add``). Every operation opens its own connection (WAL mode, a busy
timeout), so threads and processes share one index safely.

A note is read as written by ``_formatters`` (a ``# title``, ``- **Channel:**`` and
``- **Video:**`` lines, paragraphs opening with a ``[m:ss](watch URL&t=Ns)`` link), with or
without YAML front matter (its title, channel and video_id win); headings are skipped.
Each paragraph is one row with its start second; one more row per note holds its title,
channel and video id, so a query naming the video finds it once, at 0:00.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from .._exceptions import SearchError, SearchQueryError
from .._settings import search_index_path
from ..youtube._video_ids import watch_url

log = logging.getLogger(__name__)

#: Bumped when the schema or what is indexed changes: an index of another version is rebuilt.
SCHEMA_VERSION = 2  # 2: a note's passage rowid range
#: How long a write waits for another connection's (a batch's, another search's) to end.
BUSY_TIMEOUT = 10.0
#: Tokens of context in a hit's snippet.
SNIPPET_TOKENS = 12
DEFAULT_LIMIT = 20

_FTS_COLUMNS = "text, title, channel, video_id, start UNINDEXED, note UNINDEXED"
#: Case and accents folded (``cafe`` finds ``Café``); words split on Unicode word boundaries.
_TOKENIZER = "unicode61 remove_diacritics 2"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    video_id TEXT,  -- NULL: a Markdown file that is no study note
    title TEXT,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    -- Its passages' rowids (written in one transaction, so contiguous): deleted by range, since
    -- FTS5 finds rows by nothing else quickly.
    first_passage INTEGER,
    last_passage INTEGER
);
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5({_FTS_COLUMNS}, tokenize='{_TOKENIZER}');
"""

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$\n?", re.S | re.M)
_PARAGRAPH = re.compile(
    r"^\[[0-9:]+\]\(https://www\.youtube\.com/watch\?v=(?P<id>[A-Za-z0-9_-]{11})&t=(?P<start>\d+)s\)[ \t]*(?P<text>.*)$"
)
_CHANNEL_LINE = re.compile(r"^- \*\*Channel:\*\* (?P<channel>.+)$")
_VIDEO_LINE = re.compile(r"^- \*\*Video:\*\* <https://www\.youtube\.com/watch\?v=(?P<id>[A-Za-z0-9_-]{11})>")
_FILE_ID = re.compile(r"\[(?P<id>[A-Za-z0-9_-]{11})\]$")
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_MD_ESCAPE = re.compile(r"\\([\\`*_\[\]<>])")


@dataclass(frozen=True)
class Passage:
    """One paragraph of a note and the second of the video it starts at."""

    start: int
    text: str


@dataclass(frozen=True)
class ParsedNote:
    """What the index keeps of one note file."""

    video_id: str
    title: str | None
    channel: str | None
    passages: tuple[Passage, ...]


@dataclass(frozen=True)
class SearchHit:
    """One matching passage: which video, the moment it starts, the words around the match."""

    title: str
    video_id: str
    start: int
    snippet: str
    path: Path

    @property
    def url(self) -> str:
        """The watch URL at this passage's second."""
        return watch_url(self.video_id, self.start)

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "video_id": self.video_id,
            "start": self.start,
            "url": self.url,
            "snippet": self.snippet,
            "path": str(self.path),
        }


def parse_note(markdown: str, file_name: str = "") -> ParsedNote | None:
    """Read a Markdown note; None when it is no study note (no video id: an ``index.md``).

    ``file_name`` gives the video id as a last resort (note names end in ``[<id>]``).
    """
    front: dict[str, object] = {}
    body = markdown
    match = _FRONT_MATTER.match(markdown)
    if match:
        body = markdown[match.end() :]
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            log.debug("front matter of %s is not YAML (%s); reading the body only", file_name or "a note", exc)
        else:
            if isinstance(loaded, dict):
                front = {str(key): value for key, value in loaded.items()}
    title = channel = video_id = None
    passages: list[Passage] = []
    current: tuple[int, list[str]] | None = None
    for raw in body.splitlines():
        line = raw.strip()
        paragraph = _PARAGRAPH.match(line)
        if current is not None and (paragraph or not line or line.startswith("#")):  # a paragraph ends
            passages.append(Passage(current[0], _unescape(" ".join(current[1]))))
            current = None
        if paragraph:
            video_id = video_id or paragraph["id"]
            current = (int(paragraph["start"]), [paragraph["text"]] if paragraph["text"] else [])
        elif current is not None and line:
            current[1].append(line)
        elif line.startswith("# ") and title is None:
            title = _unescape(line[2:].strip())
        elif found := _CHANNEL_LINE.match(line):
            channel = channel or _unescape(found["channel"].strip())
        elif found := _VIDEO_LINE.match(line):
            video_id = found["id"]
    if current is not None:
        passages.append(Passage(current[0], _unescape(" ".join(current[1]))))
    from_file = _FILE_ID.search(Path(file_name).stem)
    # An unquoted id YAML read as a number (0x1234abcd5) is no id: the body's links still are.
    front_id = _text(front.get("video_id"))
    front_id = front_id if front_id and _VIDEO_ID.fullmatch(front_id) else None
    video_id = front_id or video_id or (from_file["id"] if from_file else None)
    if not video_id:
        return None
    return ParsedNote(
        video_id=video_id,
        title=_text(front.get("title")) or title,
        channel=_text(front.get("channel")) or channel,
        passages=tuple(passage for passage in passages if passage.text),
    )


def _text(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


def _unescape(text: str) -> str:
    return _MD_ESCAPE.sub(r"\1", text)


@functools.cache
def fts5_available() -> bool:
    """Whether this Python's SQLite has FTS5 (some builds leave it out)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
    except sqlite3.OperationalError:
        return False
    return True


def check_query(query: str) -> None:
    """Raise `SearchQueryError` unless ``query`` is valid FTS5 syntax for the index's columns.

    Checked on an empty table in memory, so an error from the real index is never taken for
    the user's.
    """
    if not query.strip():
        raise SearchQueryError("empty query")
    _require_fts5()
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"CREATE VIRTUAL TABLE passages USING fts5({_FTS_COLUMNS}, tokenize='{_TOKENIZER}')")
        try:
            db.execute("SELECT rowid FROM passages WHERE passages MATCH ?", (query,)).fetchall()
        except sqlite3.Error as exc:
            hint = 'put words with punctuation in double quotes: "don\'t"'
            raise SearchQueryError(f"bad query {query!r}: {exc}; {hint}") from None


def _require_fts5() -> None:
    if not fts5_available():
        raise SearchError(
            f"search needs SQLite's FTS5 extension, which this Python's SQLite {sqlite3.sqlite_version} "
            "lacks: use a Python built with it (the python.org and most distribution builds are)"
        )


class NoteIndex:
    """The search index of the notes under ``root`` (the output directory), kept in it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = search_index_path(self.root)

    def exists(self) -> bool:
        return self.path.exists()

    def count(self) -> int:
        """How many study notes the index holds."""
        with self._connection() as db:
            return int(db.execute("SELECT count(*) FROM notes WHERE video_id IS NOT NULL").fetchone()[0])

    # -- writing -----------------------------------------------------------------------------

    def add(self, note: Path, markdown: str | None = None) -> bool:
        """Index one note file (``markdown``: its text, if already in hand); True if it is a
        study note. A note indexed before is replaced."""
        relative = self._relative(note)
        stat = note.stat()
        parsed = parse_note(note.read_text(encoding="utf-8") if markdown is None else markdown, note.name)
        with self._writing() as db:
            _delete(db, relative)
            _insert(db, relative, parsed, stat)
        return parsed is not None

    def refresh(self) -> int:
        """Bring the index in line with the notes on disk; how many notes were (re)indexed."""
        on_disk = {self._relative(path): path for path in self.note_files()}
        with self._connection() as db:
            known = {row[0]: (row[1], row[2]) for row in db.execute("SELECT path, mtime_ns, size FROM notes")}
        changed: list[tuple[str, ParsedNote | None, os.stat_result]] = []
        for relative, path in on_disk.items():
            try:
                stat = path.stat()
                if known.get(relative) == (stat.st_mtime_ns, stat.st_size):
                    continue
                changed.append((relative, parse_note(path.read_text(encoding="utf-8"), path.name), stat))
            except (OSError, UnicodeDecodeError) as exc:  # one unreadable file costs only itself
                log.warning("search: skipping %s: %s", path, getattr(exc, "strerror", None) or exc)
        gone = [relative for relative in known if relative not in on_disk]
        if not changed and not gone:
            return 0
        with self._writing() as db:
            for relative in gone:
                _delete(db, relative)
            for relative, parsed, stat in changed:
                _delete(db, relative)
                _insert(db, relative, parsed, stat)
        return sum(1 for _, parsed, _ in changed if parsed is not None)

    def rebuild(self) -> int:
        """Throw the index away (even a damaged one) and index every note again; how many."""
        _require_fts5()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()
        return self.refresh()

    def note_files(self) -> Iterator[Path]:
        """Every ``*.md`` under the root, course folders included; hidden files and folders skipped."""
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
            for name in sorted(files):
                if name.endswith(".md") and not name.startswith("."):
                    yield Path(directory) / name

    # -- reading -----------------------------------------------------------------------------

    def search(
        self, query: str, *, limit: int = DEFAULT_LIMIT, highlight: tuple[str, str] = ("", "")
    ) -> list[SearchHit]:
        """The best ``limit`` passages for an FTS5 ``query``, best first (bm25).

        ``highlight`` wraps each matched word of the snippet (e.g. terminal bold).
        """
        check_query(query)
        with self._connection() as db:
            rows = db.execute(
                "SELECT n.path, coalesce(n.title, n.video_id), n.video_id, p.start, "
                "snippet(passages, -1, ?, ?, '…', ?) "
                "FROM passages AS p JOIN notes AS n ON n.id = p.note "
                "WHERE passages MATCH ? ORDER BY bm25(passages), n.title, p.start LIMIT ?",
                (*highlight, SNIPPET_TOKENS, query, limit),
            ).fetchall()
        return [
            SearchHit(title=title, video_id=video_id, start=int(start), snippet=snippet, path=self.root / path)
            for path, title, video_id, start, snippet in rows
        ]

    # -- connections -------------------------------------------------------------------------

    def _relative(self, note: Path) -> str:
        try:
            return note.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            raise SearchError(f"{note} is not under the notes directory {self.root}") from None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: the write lock first, so no upgrade deadlock)."""
        with self._connection() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        _require_fts5()
        try:
            if not self.path.exists():
                _create(self.path)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise SearchError(
                f"cannot open the search index {self.path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        try:
            _prepare(db)
            yield db
        except sqlite3.OperationalError as exc:  # locked too long, a full disk, a read-only file
            raise SearchError(f"the search index {self.path} failed: {exc}") from None
        except sqlite3.Error as exc:  # not a database, malformed
            raise SearchError(
                f"the search index {self.path} is damaged ({exc}): rebuild it with 'search --reindex'"
            ) from None
        finally:
            db.close()


def _create(path: Path) -> None:
    """A new index, made whole in a temporary file and linked into place.

    Switching a database to WAL needs it to itself, and SQLite answers "database is locked"
    at once, without waiting, to connections racing to do so: here no two ever share a fresh
    file. Whoever links first wins; the others' copies are dropped.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(name, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection is in WAL
            _make_schema(db)
        with contextlib.suppress(FileExistsError):
            os.link(name, path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{name}{suffix}")


def _prepare(db: sqlite3.Connection) -> None:
    """The schema; an index of another schema version is emptied and made again."""
    db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a power cut may cost the last notes
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:  # another writer may have
            _make_schema(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _make_schema(db: sqlite3.Connection) -> None:
    db.execute("DROP TABLE IF EXISTS passages")
    db.execute("DROP TABLE IF EXISTS notes")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _delete(db: sqlite3.Connection, relative: str) -> None:
    row = db.execute("SELECT id, first_passage, last_passage FROM notes WHERE path = ?", (relative,)).fetchone()
    if row is not None:
        note_id, first, last = row
        if first is not None:
            db.execute("DELETE FROM passages WHERE rowid BETWEEN ? AND ?", (first, last))
        db.execute("DELETE FROM notes WHERE id = ?", (note_id,))


def _insert(db: sqlite3.Connection, relative: str, note: ParsedNote | None, stat: os.stat_result) -> None:
    """A file's row; a Markdown file that is no note (``index.md``) gets one too, without
    passages, so that it is read again only once it changes."""
    if note is None:
        db.execute(
            "INSERT INTO notes (path, mtime_ns, size) VALUES (?, ?, ?)", (relative, stat.st_mtime_ns, stat.st_size)
        )
        return
    [first] = db.execute("SELECT coalesce(max(rowid), 0) + 1 FROM passages").fetchone()
    last = first + len(note.passages)
    cursor = db.execute(
        "INSERT INTO notes (path, video_id, title, mtime_ns, size, first_passage, last_passage) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (relative, note.video_id, note.title, stat.st_mtime_ns, stat.st_size, first, last),
    )
    note_id = cursor.lastrowid
    header = (first, "", note.title or "", note.channel or "", note.video_id, 0, note_id)
    rows = [(first + n, passage.text, "", "", "", passage.start, note_id) for n, passage in enumerate(note.passages, 1)]
    db.executemany(
        "INSERT INTO passages (rowid, text, title, channel, video_id, start, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [header, *rows],
    )
