"""Search over the notes: the note parser, the FTS5 index (refresh, rebuild, ranking, snippets,
links, unicode, threads), the batch keeping it up to date, and the ``search`` command in-process
with click's CliRunner. No tor: tests/test_cli_lab.py searches notes fetched through the lab."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.fake_client import FakeClient
from yt_study_buddy import cli
from yt_study_buddy._settings import run_log_path, search_index_path
from yt_study_buddy.app import _batch
from yt_study_buddy.app._batch import BatchOptions, BatchRunner
from yt_study_buddy.app._progress import PlainReporter
from yt_study_buddy.app._run_log import RunLog, VideoStatus
from yt_study_buddy.notes import (
    NoteIndex,
    Passage,
    Provenance,
    SearchError,
    SearchQueryError,
    _search,
    check_query,
    note_stem,
    parse_note,
    render,
)
from yt_study_buddy.youtube import Snippet, Transcript

VIDEO = "dQw4w9WgXcQ"
OTHER = "abc-def_123"
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def transcript(
    video_id: str, title: str, lines: list[tuple[float, str]], channel: str = "Prof. Loopback"
) -> Transcript:
    snippets = tuple(Snippet(text, start, 3.0) for start, text in lines)
    return Transcript(video_id, "English", "en", False, snippets, title=title, channel=channel)


def markdown(t: Transcript) -> str:
    return render(t, "md", provenance=Provenance("10.0.0.1", WHEN))


def write_note(directory: Path, t: Transcript) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{note_stem(t.title, t.video_id)}.md"
    path.write_text(markdown(t), encoding="utf-8")
    return path


#: Three paragraphs (a paragraph ends at a sentence end after 45 s): at 0, 50 and 100 s.
LECTURE = transcript(
    VIDEO,
    "Recursion: the *basics* [part 1]",
    [
        (0.0, "today we meet recursion."),
        (20.0, "a function that calls itself."),
        (50.0, "every recursion needs a base case."),
        (70.0, "without a base case, recursion never ends; recursion recursion."),
        (100.0, "next time: the stack."),
    ],
)


# -- the note parser -----------------------------------------------------------------------


def test_a_rendered_note_reads_back_with_its_title_channel_id_and_paragraph_starts():
    note = parse_note(markdown(LECTURE), "whatever.md")
    assert note is not None
    assert (note.video_id, note.title, note.channel) == (VIDEO, "Recursion: the *basics* [part 1]", "Prof. Loopback")
    assert note.passages == (
        Passage(0, "today we meet recursion. a function that calls itself."),
        Passage(
            50, "every recursion needs a base case. without a base case, recursion never ends; recursion recursion."
        ),
        Passage(100, "next time: the stack."),
    )


FRONT_MATTER_NOTE = """---
title: 'Lecture 3: "Trees" & graphs'
channel: MIT OpenCourseWare
url: https://www.youtube.com/watch?v=abc-def_123
video_id: abc-def_123
duration: 125
language: en
chapters:
  - {title: Intro, start: 0}
  - {title: Depth first, start: 62}
fetched: 2026-12-01T09:30:00Z
playlist: PL0123456789
position: 3
---
# Lecture 3: "Trees" & graphs

- **Channel:** MIT OpenCourseWare
- **Video:** <https://www.youtube.com/watch?v=abc-def_123>

## Chapters

- [00:00](https://www.youtube.com/watch?v=abc-def_123&t=0s) Intro
- [01:02](https://www.youtube.com/watch?v=abc-def_123&t=62s) Depth first

## Intro

[00:00](https://www.youtube.com/watch?v=abc-def_123&t=0s) a tree is a graph
without cycles

## Depth first

[01:02](https://www.youtube.com/watch?v=abc-def_123&t=62s) go deep first, then back up
"""


def test_a_note_with_front_matter_and_chapter_sections():
    """The front matter as another helper writes it; headings and the chapter list are not
    passages; a paragraph's wrapped lines stay one passage."""
    assert yaml.safe_load(FRONT_MATTER_NOTE.split("---")[1])["video_id"] == OTHER  # the fixture is YAML
    note = parse_note(FRONT_MATTER_NOTE)
    assert note is not None
    assert (note.video_id, note.title, note.channel) == (OTHER, 'Lecture 3: "Trees" & graphs', "MIT OpenCourseWare")
    assert note.passages == (Passage(0, "a tree is a graph without cycles"), Passage(62, "go deep first, then back up"))


def test_front_matter_wins_over_the_body_and_broken_front_matter_leaves_the_body():
    edited = FRONT_MATTER_NOTE.replace("title: 'Lecture 3", "title: 'Renamed 3")
    parsed = parse_note(edited)
    assert parsed is not None and parsed.title == 'Renamed 3: "Trees" & graphs'
    as_number = FRONT_MATTER_NOTE.replace("video_id: abc-def_123", "video_id: 0x1234abcd5")  # YAML: an int
    parsed = parse_note(as_number)
    assert parsed is not None and parsed.video_id == OTHER
    broken = FRONT_MATTER_NOTE.replace("channel: MIT OpenCourseWare", "channel: [unclosed")
    note = parse_note(broken)
    assert note is not None and note.channel == "MIT OpenCourseWare" and len(note.passages) == 2


def test_what_is_not_a_study_note_is_not_indexed():
    course_index = "# My course\n\n1. [Intro](001 - Intro [dQw4w9WgXcQ].md) 02:05\n"
    assert parse_note(course_index, "index.md") is None
    # A note with no paragraphs (an empty transcript) is still a note, found by its name's id.
    bare = parse_note("# Silent film\n", f"Silent film [{VIDEO}].md")
    assert bare is not None and (bare.video_id, bare.title, bare.passages) == (VIDEO, "Silent film", ())


# -- the index -----------------------------------------------------------------------------


@pytest.fixture
def notes(tmp_path) -> Path:
    root = tmp_path / "notes"
    write_note(root, LECTURE)
    write_note(
        root,
        transcript(OTHER, "Graphs", [(0.0, "a graph has nodes."), (50.0, "recursion walks a tree."), (101.0, "done.")]),
    )
    return root


def test_hits_link_to_the_second_their_paragraph_starts_at(notes):
    index = NoteIndex(notes)
    assert index.refresh() == 2
    hits = index.search('"base case"', highlight=("[", "]"))
    [hit] = hits
    assert (hit.title, hit.video_id, hit.start) == ("Recursion: the *basics* [part 1]", VIDEO, 50)
    assert hit.url == f"https://www.youtube.com/watch?v={VIDEO}&t=50s"
    assert hit.snippet == "every recursion needs a [base case]. without a [base case], recursion never…"
    assert hit.path == notes / "Recursion - the basics [part 1] [dQw4w9WgXcQ].md" and hit.path.exists()


def test_hits_are_ranked_by_relevance_and_limited(tmp_path):
    filler = [(50.0 * n, f"filler paragraph number {n} about nothing much.") for n in range(2, 12)]
    lines = [
        (0.0, "a long paragraph that says stack only once among many other words."),
        (50.0, "stack, stack, stack."),
    ]
    write_note(tmp_path, transcript(VIDEO, "Talk", lines + filler))
    write_note(tmp_path, transcript(OTHER, "Other talk", filler))
    index = NoteIndex(tmp_path)
    index.refresh()
    assert [(hit.video_id, hit.start) for hit in index.search("stack")] == [(VIDEO, 50), (VIDEO, 0)]
    assert len(index.search("filler")) == 20
    assert len(index.search("filler", limit=3)) == 3
    assert index.search("nonexistentword") == []


def test_every_paragraph_and_the_title_are_found(notes):
    index = NoteIndex(notes)
    index.refresh()
    hits = index.search("recursion")
    assert sorted((hit.video_id, hit.start, hit.snippet == hit.title) for hit in hits) == [
        (OTHER, 50, False),
        (VIDEO, 0, False),
        (VIDEO, 0, True),  # the title row: its snippet is the title
        (VIDEO, 50, False),
    ]


def test_a_snippet_is_short_and_marks_where_it_was_cut(tmp_path):
    long_text = " ".join(f"word{n}" for n in range(60)) + " needle " + " ".join(f"more{n}" for n in range(60))
    write_note(tmp_path, transcript(VIDEO, "Long", [(0.0, long_text)]))
    index = NoteIndex(tmp_path)
    index.refresh()
    [hit] = index.search("needle")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and "needle" in hit.snippet
    assert len(hit.snippet.split()) <= 12


def test_channel_and_video_id_find_the_video_once_at_its_start(notes):
    index = NoteIndex(notes)
    index.refresh()
    by_channel = index.search('"Prof. Loopback"')
    assert sorted((hit.video_id, hit.start) for hit in by_channel) == [(OTHER, 0), (VIDEO, 0)]
    assert [(hit.video_id, hit.start) for hit in index.search(VIDEO)] == [(VIDEO, 0)]
    assert [hit.start for hit in index.search("title:graphs")] == [0]


def test_refresh_follows_new_edited_and_deleted_notes_in_course_folders(notes, monkeypatch):
    index = NoteIndex(notes)
    index.refresh()
    assert index.refresh() == 0  # nothing changed
    course = notes / "Algorithms [PL0123456789]"
    nested = write_note(course, transcript("zzzzzzzzzzz", "001 Sorting", [(7.0, "quicksort picks a pivot.")]))
    (notes / ".yt-study-buddy" / "hidden.md").write_text(f"[00:01](https://www.youtube.com/watch?v={VIDEO}&t=1s) pivot")
    (course / "index.md").write_text("# Algorithms\n\n1. [Sorting](001 Sorting [zzzzzzzzzzz].md) pivot\n")
    assert index.refresh() == 1
    read: list[str] = []

    def reading(text, name=""):
        read.append(name)
        return parse_note(text, name)

    monkeypatch.setattr(_search, "parse_note", reading)
    assert index.refresh() == 0
    assert read == []  # nor is the course's index.md read again until it changes
    [hit] = index.search("pivot")
    assert (hit.path, hit.start) == (nested, 7)

    graphs = notes / "Graphs [abc-def_123].md"
    graphs.write_text(graphs.read_text().replace("a graph has nodes.", "a graph has vertices and edges."))
    assert index.refresh() == 1
    assert index.search("nodes") == [] and [hit.video_id for hit in index.search("vertices")] == [OTHER]

    nested.unlink()
    assert index.refresh() == 0
    assert index.search("pivot") == []


def test_replacing_a_note_leaves_its_neighbours_whole(tmp_path):
    """Each note's passages are deleted by their rowid range: exactly its own."""
    index = NoteIndex(tmp_path)
    paths = [
        write_note(tmp_path, transcript(f"neighbour{n:02d}", f"Talk {n}", [(0.0, f"alpha{n}."), (50.0, f"beta{n}.")]))
        for n in range(3)
    ]
    for path in paths:
        index.add(path)
    paths[1].write_text(paths[1].read_text().replace("beta1", "gamma1"))
    index.add(paths[1])
    words = ["alpha0", "beta0", "alpha1", "beta1", "gamma1", "alpha2", "beta2"]
    assert {word: len(index.search(word)) for word in words} == {word: int(word != "beta1") for word in words}


def test_accents_and_case_fold_in_every_script(tmp_path):
    write_note(
        tmp_path,
        transcript(
            VIDEO,
            "Ünïcödé: Schrödinger",
            [(0.0, "Das Café ist ÜBER dem Fluss."), (50.0, "Привет, МИР."), (100.0, "日本語 テキスト")],
        ),
    )
    index = NoteIndex(tmp_path)
    index.refresh()
    assert [hit.start for hit in index.search("cafe uber")] == [0]
    assert [hit.start for hit in index.search("мир")] == [50]
    assert [hit.start for hit in index.search("schrodinger")] == [0]  # the title row
    assert [hit.start for hit in index.search("テキスト")] == [100]  # a run of CJK is one word
    [hit] = index.search("привет", highlight=("<", ">"))
    assert hit.snippet.startswith("<Привет>")


@pytest.mark.parametrize("query", ["don't", '"unclosed', "AND", "nosuchcolumn:word", "a NOT", "  "])
def test_bad_queries_are_refused_before_the_index_is_touched(tmp_path, query):
    with pytest.raises(SearchQueryError, match="bad query|empty query"):
        check_query(query)
    with pytest.raises(SearchQueryError):
        NoteIndex(tmp_path).search(query)
    assert not search_index_path(tmp_path).exists()


def test_a_damaged_index_says_so_and_rebuild_repairs_it(notes):
    index = NoteIndex(notes)
    index.refresh()
    index.path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(SearchError, match="damaged.*--reindex"):
        index.search("recursion")
    assert index.rebuild() == 2
    assert len(index.search("recursion")) == 4


def test_an_index_of_another_schema_version_is_rebuilt(notes):
    index = NoteIndex(notes)
    index.refresh()
    with sqlite3.connect(index.path) as db:
        db.execute("PRAGMA user_version=999")
    assert index.search("recursion") == []  # emptied, not misread
    assert index.refresh() == 2 and len(index.search("recursion")) == 4


def test_threads_writing_notes_at_once_all_land_in_the_index(tmp_path):
    index = NoteIndex(tmp_path)
    paths = [
        write_note(tmp_path, transcript(f"video{n:06d}", f"Talk {n}", [(float(n), f"shared word{n} topic.")]))
        for n in range(24)
    ]
    errors: list[BaseException] = []

    def add(chunk: list[Path]) -> None:
        try:
            for path in chunk:
                NoteIndex(tmp_path).add(path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(paths[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(index.search("shared", limit=100)) == 24
    assert index.refresh() == 0  # add() recorded each file as it is on disk


def test_without_fts5_search_says_so_and_the_batch_still_writes_notes(tmp_path, monkeypatch):
    monkeypatch.setattr(_search, "fts5_available", lambda: False)
    with pytest.raises(SearchError, match="FTS5"):
        NoteIndex(tmp_path).refresh()
    assert not search_index_path(tmp_path).exists()


# -- the batch keeps the index up to date ---------------------------------------------------


class Fetcher:
    """Stands in for TorTranscriptFetcher: every video says the same about its own id."""

    def __init__(self, session: object) -> None:
        pass

    def fetch_transcript(self, video_id: str, languages: object, translate_to: object = None) -> Transcript:
        return transcript(video_id, f"Talk {video_id}", [(0.0, "hello."), (50.0, f"the secret is {video_id[:3]}.")])


def run_batch(output: Path, videos: list[str], monkeypatch, formats: tuple[str, ...] = ("md",)) -> BatchRunner:
    monkeypatch.setattr(_batch, "TorTranscriptFetcher", Fetcher)
    options = BatchOptions(output_dir=output, workers=3, formats=formats)
    runner = BatchRunner(
        FakeClient([f"10.0.0.{n}" for n in range(1, 20)]),
        options,
        reporter=PlainReporter(io.StringIO()),
        run_log=RunLog(run_log_path(output)),
    )
    runner.run(videos)
    return runner


def test_the_batch_indexes_each_note_as_it_writes_it(tmp_path, monkeypatch):
    output = tmp_path / "notes"
    run_batch(output, ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"], monkeypatch, formats=("txt", "md"))
    index = NoteIndex(output)
    assert index.exists()
    [hit] = index.search("bbb")
    assert (hit.video_id, hit.start, hit.title) == ("bbbbbbbbbbb", 50, "Talk bbbbbbbbbbb")
    assert index.refresh() == 0  # every note was already in, as it is on disk


def test_a_batch_without_fts5_writes_its_notes_and_no_index(tmp_path, monkeypatch):
    monkeypatch.setattr(_batch, "fts5_available", lambda: False)
    output = tmp_path / "notes"
    runner = run_batch(output, ["aaaaaaaaaaa"], monkeypatch)
    assert runner._results["aaaaaaaaaaa"].status is VideoStatus.FETCHED
    assert not search_index_path(output).exists()


def test_a_failing_index_never_fails_the_fetch(tmp_path, monkeypatch, caplog):
    output = tmp_path / "notes"
    search_index_path(output).mkdir(parents=True)  # a directory where the index file should be
    with caplog.at_level(logging.WARNING, logger="yt_study_buddy"):
        runner = run_batch(output, ["aaaaaaaaaaa"], monkeypatch)
    assert runner._results["aaaaaaaaaaa"].status is VideoStatus.FETCHED
    assert (output / "Talk aaaaaaaaaaa [aaaaaaaaaaa].md").exists()
    assert "search index: Talk aaaaaaaaaaa [aaaaaaaaaaa].md not indexed" in caplog.text


# -- the command -----------------------------------------------------------------------------


def invoke(*args: str):
    environment = {key: None for key in __import__("os").environ if key.startswith("YTSB_")}
    return CliRunner().invoke(cli.main, ["search", *args], env=environment)


@pytest.fixture(autouse=True)
def restore_logging():
    """The command wires the package's logger; later tests need it as it was."""
    logger = logging.getLogger("yt_study_buddy")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_search_prints_one_line_per_hit_and_builds_a_missing_index(notes):
    assert not search_index_path(notes).exists()
    done = invoke('"base case"', "--output", str(notes))
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        f"Recursion: the *basics* [part 1]  00:50  every recursion needs a base case. without a base case, "
        f"recursion never…  https://www.youtube.com/watch?v={VIDEO}&t=50s\n"
    )
    assert "indexed 2 notes" in done.stderr and search_index_path(notes).exists()
    assert invoke('"base case"', "--output", str(notes)).stderr == ""  # nothing new to index
    write_note(notes, transcript("zzzzzzzzzzz", "More", [(0.0, "another base case.")]))
    done = invoke('"base case"', "--output", str(notes), "-q")
    assert done.exit_code == 0 and done.stdout.count("\n") == 2 and done.stderr == ""


def test_several_words_must_all_match_and_limit_caps_the_hits(notes):
    done = invoke("recursion", "tree", "-o", str(notes))
    assert done.exit_code == 0 and done.stdout.count("\n") == 1 and f"{OTHER}&t=50s" in done.stdout
    done = invoke("recursion", "-o", str(notes), "--limit", "2")
    assert done.exit_code == 0 and done.stdout.count("\n") == 2


def test_no_hits_exit_1_with_nothing_on_stdout(notes):
    done = invoke("photosynthesis", "-o", str(notes))
    assert (done.exit_code, done.stdout) == (1, "")
    done = invoke("photosynthesis", "-o", str(notes), "--json")
    assert (done.exit_code, json.loads(done.stdout)) == (1, [])


def test_json_lists_every_hit_with_its_link_and_note(notes):
    done = invoke("recursion", "-o", str(notes), "--json")
    assert done.exit_code == 0
    hits = json.loads(done.stdout)
    assert len(hits) == 4 and all(set(hit) == {"title", "video_id", "start", "url", "snippet", "path"} for hit in hits)
    [hit] = [hit for hit in hits if (hit["video_id"], hit["start"]) == (VIDEO, 50)]
    assert hit["url"] == f"https://www.youtube.com/watch?v={VIDEO}&t=50s"
    assert hit["snippet"].startswith("every recursion needs a base case")
    assert Path(hit["path"]).read_text().count("base case") == 2
    assert "\x1b" not in done.stdout


@pytest.mark.parametrize("query", ["don't", '"unclosed', "NOT"])
def test_a_bad_query_is_one_line_and_exit_2(notes, query):
    done = invoke(query, "-o", str(notes))
    assert done.exit_code == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("yt-study-buddy: error: bad query ")


def test_without_fts5_one_line_and_exit_1(notes, monkeypatch):
    monkeypatch.setattr(_search, "fts5_available", lambda: False)
    done = invoke("recursion", "-o", str(notes))
    assert done.exit_code == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("yt-study-buddy: error: search needs SQLite's FTS5 extension")


def test_an_output_without_markdown_notes_says_so(tmp_path):
    (tmp_path / f"Talk [{VIDEO}].txt").write_text("recursion\n")
    done = invoke("recursion", "-o", str(tmp_path))
    assert (done.exit_code, done.stdout) == (1, "")
    assert "no Markdown notes in" in done.stderr


def test_usage_errors_exit_2(tmp_path):
    done = invoke("word", "-o", str(tmp_path / "missing"))
    assert done.exit_code == 2 and "no notes directory" in done.stderr
    assert not (tmp_path / "missing").exists()
    assert invoke("-o", str(tmp_path)).exit_code == 2  # no query
    assert invoke("word", "-o", str(tmp_path), "--limit", "0").exit_code == 2


def test_reindex_rebuilds_from_the_files_and_a_damaged_index_is_one_line(notes):
    assert invoke("recursion", "-o", str(notes)).exit_code == 0
    search_index_path(notes).write_bytes(b"garbage" * 1000)
    done = invoke("recursion", "-o", str(notes))
    assert done.exit_code == 1 and "is damaged" in done.stderr and "--reindex" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    done = invoke("recursion", "-o", str(notes), "--reindex")
    assert done.exit_code == 0 and done.stdout.count("\n") == 4


def test_notes_deleted_since_are_not_hits(notes):
    assert invoke("tree", "-o", str(notes)).exit_code == 0
    (notes / "Graphs [abc-def_123].md").unlink()
    assert invoke("tree", "-o", str(notes)).exit_code == 1


def test_the_search_benchmark_runs_and_reports_every_step(tmp_path):
    """Speed is the benchmark's to measure (benchmarks/search.py); this checks it runs."""
    out = tmp_path / "search.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.search", "--sizes", "2", "4", "--repeat", "1", "--json", str(out)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report["seconds"]["4"]) == {"add", "rebuild", "refresh", "update", "query"}
    assert done.stdout.startswith("| step | 2 notes s | 4 notes s | ratio |")
