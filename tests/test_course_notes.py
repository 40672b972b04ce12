"""Courses on disk, without tor: folder and note names, the index's rendering, where each video's
notes go, and the index written from a run's results (copies for videos done elsewhere)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

from yt_study_buddy.app._course_notes import (
    CoursePlace,
    course_folder,
    course_places,
    note_places,
    write_course_indexes,
)
from yt_study_buddy.app._run_log import DoneTracker, ErrorKind, RunLog, VideoResult, VideoStatus
from yt_study_buddy.notes._files import MAX_STEM_BYTES, course_folder_name, course_note_stem, notes_in
from yt_study_buddy.notes._formatters import CourseContext, Provenance, render, with_course
from yt_study_buddy.notes._front_matter import read_front_matter
from yt_study_buddy.notes._index import CourseIndex, EntryState, IndexEntry, note_link, render_index
from yt_study_buddy.youtube._chapters import Chapter
from yt_study_buddy.youtube._courses import Course, CourseEntry, CourseKind
from yt_study_buddy.youtube._transcripts import Snippet, Transcript

LINK = re.compile(r"\]\(([^)]+)\)")


def course(n: int, *, kind: CourseKind = CourseKind.PLAYLIST, handle: str | None = None, **kw: object) -> Course:
    entries = tuple(CourseEntry(f"vid{i:08d}", f"Lecture {i}: [part] {i}", 60.0 * i, i) for i in range(1, n + 1))
    values: dict[str, object] = {
        "kind": kind,
        "id": "PLcourse0000000000",
        "title": "Thermo: the course",
        "channel": "Prof X",
        "handle": handle,
        "url": "https://www.youtube.com/playlist?list=PLcourse0000000000",
        "entries": entries,
    }
    values.update(kw)
    return Course(**values)  # type: ignore[arg-type]


# -- names -----------------------------------------------------------------------------------


def test_course_note_names_sort_in_course_order_and_end_in_the_id():
    assert course_note_stem(7, 3, "Lecture 7: Entropy", "abcdefghijk") == "007 - Lecture 7 - Entropy [abcdefghijk]"
    assert course_note_stem(1234, 4, "x", "abcdefghijk") == "1234 - x [abcdefghijk]"
    assert course_note_stem(2, 3, "???", "abcdefghijk") == "002 - [abcdefghijk]"  # the id stays findable
    long = course_note_stem(1, 3, "é" * 200, "abcdefghijk")
    assert len(long.encode()) <= MAX_STEM_BYTES and long.startswith("001 - é") and long.endswith(" [abcdefghijk]")


def test_course_folders_are_safe_names_keyed_by_playlist_id_or_handle():
    assert course_folder_name("Thermo: the course", "PLx") == "Thermo - the course [PLx]"
    assert course_folder(course(1)) == "Thermo - the course [PLcourse0000000000]"
    channel = course(1, kind=CourseKind.CHANNEL, id="UCchannel", title="Prof X", handle="@profx")
    assert course_folder(channel) == "Prof X [@profx]"
    assert course_folder(course(1, kind=CourseKind.CHANNEL, id="UCchannel", title="Prof X")) == "Prof X [UCchannel]"


def test_positions_are_padded_to_at_least_three_digits_and_to_the_longest():
    assert {c.width for _, c in course_places(course(12))} == {3}
    big = course(1, entries=(CourseEntry("vid00000001", "t", None, 1), CourseEntry("vid00001234", "t", None, 1234)))
    assert [c.stem("t", v) for v, c in course_places(big)] == ["0001 - t [vid00000001]", "1234 - t [vid00001234]"]


def test_note_places_root_for_singles_and_a_folder_per_course():
    a, b = course(2), course(1, id="PLother", title="Other")
    places = note_places([a, b], singles=["single00001", "vid00000001"])
    assert places["single00001"] == (None,)
    first = places["vid00000001"]
    assert first[0] is None and [(c.course_id, c.position) for c in first[1:] if c] == [
        ("PLcourse0000000000", 1),
        ("PLother", 1),
    ]
    assert [c.folder for c in places["vid00000002"] if c] == ["Thermo - the course [PLcourse0000000000]"]
    assert note_places([a]) == {v: (c,) for v, c in course_places(a)}  # no singles given: none


# -- the index -------------------------------------------------------------------------------


def index(entries: list[IndexEntry], channel: str | None = "Prof X") -> CourseIndex:
    return CourseIndex(
        "Thermo [2026]", CourseKind.PLAYLIST, "https://www.youtube.com/playlist?list=PLx", channel, entries
    )


def test_the_index_lists_every_video_in_order_with_its_link_duration_and_state():
    entries = [
        IndexEntry(1, "aaaaaaaaaaa", "Intro [1]", 754.0, EntryState.FETCHED, "001 - Intro [1] [aaaaaaaaaaa].md"),
        IndexEntry(2, "bbbbbbbbbbb", "Heat", 3723.0, EntryState.FAILED, None, "no transcript in en"),
        IndexEntry(3, "ccccccccccc", None, None, EntryState.PENDING, None, "not fetched: the run was interrupted"),
    ]
    text = render_index(index(entries))
    lines = text.splitlines()
    assert lines[0] == r"# Thermo \[2026\]"
    assert "- **Channel:** Prof X" in lines
    assert "- **Playlist:** <https://www.youtube.com/playlist?list=PLx>" in lines
    assert "- **Videos:** 3 (1 fetched, 1 failed, 1 pending)" in lines
    assert "- **Total duration:** 1:14:37 (and 1 of unknown length)" in lines
    assert lines[-3:] == [
        r"1. [Intro \[1\]](001%20-%20Intro%20%5B1%5D%20%5Baaaaaaaaaaa%5D.md) — 12:34",
        "2. Heat — 1:02:03 — **failed**: no transcript in en",
        "3. ccccccccccc — ? — *pending*: not fetched: the run was interrupted",
    ]
    assert text.endswith("\n")


def test_a_complete_course_shows_no_counts_and_the_channel_only_when_known():
    entries = [IndexEntry(1, "aaaaaaaaaaa", "A", 60.0, EntryState.FETCHED, "a.md")]
    lines = render_index(index(entries, channel=None)).splitlines()
    assert "- **Videos:** 1" in lines and "- **Total duration:** 01:00" in lines
    assert not any(line.startswith("- **Channel:**") for line in lines)


@pytest.mark.parametrize("name", ["001 - A b [x].md", "100% (a)(b) #1 & ü.md", "a]b[c.md"])
def test_links_are_percent_encoded_and_decode_to_the_file_name(name: str):
    target = note_link(name)
    assert not re.search(r"[\s\[\]()<>]", target)
    assert unquote(target) == name


# -- the index on disk -----------------------------------------------------------------------


def fetched(video_id: str, files: list[Path]) -> VideoResult:
    return VideoResult(video_id, VideoStatus.FETCHED, files=[str(f) for f in files], title="t")


def test_the_index_links_the_notes_in_the_folder_and_copies_in_videos_done_elsewhere(tmp_path: Path):
    output = tmp_path / "notes"
    c = course(3)
    folder = output / course_folder(c)
    folder.mkdir(parents=True)
    [(v1, c1), (v2, _), (v3, _)] = course_places(c)
    first = folder / f"{c1.stem('t', v1)}.md"
    first.write_text("first")
    elsewhere = output / f"Loose [{v2}].md"  # fetched before, on its own
    elsewhere.write_text("second")
    results = {
        v1: fetched(v1, [first]),
        v2: VideoResult(v2, VideoStatus.SKIPPED),
        v3: VideoResult(v3, VideoStatus.FAILED, error_kind=ErrorKind.PERMANENT, error="no transcript"),
    }
    [path] = write_course_indexes(output, [c], results, lambda vid: [elsewhere] if vid == v2 else [])
    assert path == folder / "index.md"
    text = path.read_text()
    targets = [unquote(t) for t in LINK.findall(text)]
    assert [Path(t).name for t in targets] == [first.name, f"002 - Lecture 2 - [part] 2 [{v2}].md"]
    assert all((folder / t).is_file() for t in targets)
    assert (folder / targets[1]).read_text() == "second" and elsewhere.is_file()  # a copy
    assert "**failed**: no transcript" in text.splitlines()[-1]
    assert set(notes_in(folder)) == {v1, v2}


def test_done_videos_are_found_in_their_course_folder(tmp_path: Path):
    output = tmp_path / "notes"
    folder = output / "Course [PLx]"
    folder.mkdir(parents=True)
    note = folder / "001 - A [aaaaaaaaaaa].md"
    note.write_text("x")
    log = RunLog(output / ".yt-study-buddy" / "runs.jsonl")
    log.append(fetched("aaaaaaaaaaa", [note]), "run")
    moved = tmp_path / "moved"
    (output).rename(moved)  # the whole output directory moved: its course folders still count
    tracker = DoneTracker(moved / ".yt-study-buddy" / "runs.jsonl", moved)
    assert tracker.done() == {"aaaaaaaaaaa"}
    assert tracker.note_files("aaaaaaaaaaa") == [moved / "Course [PLx]" / note.name]
    (moved / "Course [PLx]" / note.name).unlink()
    assert tracker.done() == set() and tracker.note_files("aaaaaaaaaaa") == []


def test_course_context_is_what_front_matter_needs():
    [(video_id, context)] = course_places(course(1))
    assert context == CoursePlace(
        CourseKind.PLAYLIST,
        "PLcourse0000000000",
        "Thermo: the course",
        course_folder(course(1)),
        1,
        3,
        "Lecture 1: [part] 1",
    )
    assert video_id == "vid00000001"


def test_a_channel_index_names_its_uploads():
    entries = [IndexEntry(1, "aaaaaaaaaaa", "A", 60.0, EntryState.FETCHED, "a.md")]
    url = "https://www.youtube.com/@profx/videos"
    lines = render_index(CourseIndex("Prof X", CourseKind.CHANNEL, url, "Prof X", entries)).splitlines()
    assert lines[:4] == ["# Prof X", "", "- **Channel:** Prof X", f"- **Uploads:** <{url}>"]


def test_a_copied_note_names_its_new_course_and_place_in_its_front_matter():
    transcript = Transcript("aaaaaaaaaaa", "English", "en", False, (Snippet("hello", 0.0, 1.0),), title="T")
    first = CourseContext(title="Course A", id="PLa", position=2)
    note = render(transcript, "md", provenance=Provenance(None, datetime.now(UTC), course=first))
    moved = with_course(note, CourseContext(title="Course B", id="PLb", position=7))
    before, after = read_front_matter(note), read_front_matter(moved)
    assert before is not None and after is not None
    assert after[0] == {**before[0], "playlist": {"title": "Course B", "id": "PLb", "kind": "playlist"}, "position": 7}
    assert after[1] == before[1]
    assert with_course("# an old note\n", first) == "# an old note\n"  # no front matter: as it was


# -- README's example course -------------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"
#: README's example course (from a run of the CLI against the fake YouTube, Ctrl-C during video 4).
EXAMPLE = (
    ("kx9bQ2mV0aE", "Lecture 1: What is heat?", 2838, EntryState.FETCHED, None),
    ("Zr4pL8wQn1c", "Lecture 2: The first law", 3105, EntryState.FETCHED, None),
    ("a7Hd0PqX3sY", "Lecture 3: Entropy", 2951, EntryState.FAILED, "subtitles are disabled for this video"),
    ("Qm2vT6yLr8E", "Lecture 4: Engines", 3320, EntryState.PENDING, "not fetched: the run was interrupted"),
)


def readme_daily_use_blocks() -> list[str]:
    """The ```markdown blocks of README's course workflow ("Daily use", before "Everything else")."""
    section = README.read_text().split("## Daily use", 1)[1].split("### Everything else", 1)[0]
    return re.findall(r"```markdown\n(.*?)```", section, re.S)


def test_the_readmes_example_index_is_what_the_index_writes():
    entries = [
        IndexEntry(
            n,
            video_id,
            title,
            float(seconds),
            state,
            f"{course_note_stem(n, 3, title, video_id)}.md" if state is EntryState.FETCHED else None,
            reason,
        )
        for n, (video_id, title, seconds, state, reason) in enumerate(EXAMPLE, start=1)
    ]
    url = "https://www.youtube.com/playlist?list=PLx3kQ9thermo2026"
    written = render_index(
        CourseIndex("Thermodynamics (Fall 2026)", CourseKind.PLAYLIST, url, "Prof. Ada Loopback", entries)
    )
    assert readme_daily_use_blocks()[0] == written


def test_the_readmes_example_note_is_what_a_course_note_looks_like():
    """Every line README shows is the rendered note's, in order; it leaves out lines ("..." ends
    the paragraphs it shortens) but changes none."""
    chapters = (Chapter("Introduction", 0), Chapter("Temperature", 36))
    transcript = Transcript(
        "kx9bQ2mV0aE",
        "English",
        "en",
        False,
        (Snippet("good morning everyone.", 0.0, 6.0), Snippet("temperature first.", 36.0, 6.0)),
        title="Lecture 1: What is heat?",
        channel="Prof. Ada Loopback",
        video_duration=2838,
        chapters=chapters,
    )
    place = CourseContext(title="Thermodynamics (Fall 2026)", id="PLx3kQ9thermo2026", position=1)
    provenance = Provenance("127.0.0.11", datetime(2026, 12, 3, 14, 8, 53, tzinfo=UTC), course=place)
    rendered = iter(render(transcript, "md", provenance=provenance).splitlines())
    shown = [line for line in readme_daily_use_blocks()[1].splitlines() if line and not line.endswith("...")]
    missing = [line for line in shown if not any(line == other for other in rendered)]
    assert missing == []
