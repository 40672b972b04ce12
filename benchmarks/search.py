"""Search over many notes: time the index's steps at two sizes of an output directory.

No tor and no network: a temporary output directory holds N Markdown notes rendered as the
batch renders them (a 20-minute lecture each: about 400 caption lines, 20 paragraphs). Steps:

- **add**: ``NoteIndex.add`` of every note, one by one, as a batch adds each note it writes;
- **rebuild**: ``search --reindex``: the index thrown away and every note read again;
- **refresh**: what each search does first when nothing changed (every note's size and time);
- **update**: the same when every note changed (each one's passages replaced);
- **query**: a word, a phrase and a prefix, the best 20 hits of each.

    .venv/bin/python -m benchmarks.search [--sizes 100 1000] [--repeat 3] [--json out.json]

Linear means a ratio near 10 between the two sizes (the default); a query's is usually far less.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import scaling
from benchmarks.scaling import best_of
from yt_study_buddy.notes import NoteIndex, Provenance, note_stem, render
from yt_study_buddy.testing.fake_youtube._pages import generate_snippets
from yt_study_buddy.youtube import Snippet, Transcript

#: Caption lines per note: the fake's few dozen, repeated to a 20-minute lecture.
LINES_PER_NOTE = 400
QUERIES = ("recursion", '"base case"', "tect*")


def lecture(n: int) -> Transcript:
    video_id = f"v{n:010d}"
    lines: list[Snippet] = []
    part = 0
    while len(lines) < LINES_PER_NOTE:
        offset = lines[-1].start + lines[-1].duration if lines else 0.0
        lines += [Snippet(s.text, s.start + offset, s.duration) for s in generate_snippets(f"{video_id}{part}")]
        part += 1
    extra = ("base case", "plate tectonics")[n % 2]
    lines[len(lines) // 2] = Snippet(f"recursion needs {extra}", lines[len(lines) // 2].start, 3.0)
    return Transcript(video_id, "English", "en", False, tuple(lines[:LINES_PER_NOTE]), title=f"Lecture {n}")


def write_notes(output: Path, count: int) -> list[tuple[Path, str]]:
    provenance = Provenance("127.0.0.1", datetime(2026, 12, 1, tzinfo=UTC))
    notes = []
    for n in range(count):
        transcript = lecture(n)
        path = output / f"{note_stem(transcript.title, transcript.video_id)}.md"
        text = render(transcript, "md", provenance=provenance)
        path.write_text(text, encoding="utf-8")
        notes.append((path, text))
    return notes


def touch(notes: list[tuple[Path, str]]) -> None:
    """Every note edited: one more line at its end."""
    for path, text in notes:
        text += "\n"
        path.write_text(text, encoding="utf-8")


def measure(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ytsb-search-") as tmp:
        output = Path(tmp)
        notes = write_notes(output, count)
        index = NoteIndex(output)

        def add_each() -> None:
            for path, text in notes:
                index.add(path, text)

        def queries() -> None:
            for query in QUERIES:
                assert index.search(query, limit=20), query

        def empty() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{index.path}{suffix}").unlink(missing_ok=True)

        seconds = {
            "add": best_of(repeat, add_each, before=empty),
            "rebuild": best_of(repeat, index.rebuild),
            "refresh": best_of(repeat, index.refresh),
            "update": best_of(repeat, index.refresh, before=lambda: touch(notes)),
            "query": best_of(repeat, queries),
        }
        assert index.refresh() == 0
        return seconds


if __name__ == "__main__":
    scaling.main(__doc__, measure, "notes", (100, 1000))
