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

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

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


def best_of(repeat: int, step: Callable[[], object], before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[100, 1000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per step")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    small, large = args.sizes
    results = {size: measure(size, args.repeat) for size in (small, large)}
    ratios = {step: results[large][step] / results[small][step] for step in results[small]}
    print(f"| step | {small:,} notes s | {large:,} notes s | ratio |")
    print("|---|---|---|---|")
    for step, ratio in ratios.items():
        print(f"| {step} | {results[small][step]:.4f} | {results[large][step]:.4f} | {ratio:.1f} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"sizes": [small, large], "seconds": {str(k): v for k, v in results.items()}, "ratios": ratios},
                indent=2,
            )
            + "\n"
        )
    print(f"worst ratio {max(ratios.values()):.1f} for {large / small:g}x the notes", file=sys.stderr)


if __name__ == "__main__":
    main()
