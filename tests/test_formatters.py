from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml

from yt_study_buddy.notes import read_front_matter
from yt_study_buddy.notes._formatters import BEFORE_CHAPTERS, FORMATS, CourseContext, Provenance, clock, render
from yt_study_buddy.youtube._chapters import Chapter
from yt_study_buddy.youtube._courses import Course, CourseEntry, CourseKind
from yt_study_buddy.youtube._transcripts import Snippet, Transcript

ID = "dQw4w9WgXcQ"
PROVENANCE = Provenance(
    exit_ip="198.51.100.7",
    fetched_at=datetime(2025, 3, 4, 6, 7, 8, tzinfo=timezone(timedelta(hours=2))),
    attempts=3,
)
LINK = re.compile(r"^\[(?P<clock>[0-9:]+)\]\(https://www\.youtube\.com/watch\?v=(?P<id>[\w-]{11})&t=(?P<t>\d+)s\) ")


def _transcript(*snippets: Snippet, **fields: object) -> Transcript:
    base = Transcript(
        video_id=ID,
        language="English",
        language_code="en",
        is_generated=False,
        snippets=snippets,
        title="Linear Algebra, Lecture 1",
        channel="MIT OpenCourseWare",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


SHORT = _transcript(
    Snippet("Hey & hi", 0.0, 1.54),
    Snippet("[Music]", 1.54, 2.0),
    Snippet("two\nlines", 3.0, 5.0),  # overlaps the next snippet
    Snippet("end", 4.5, 1.0),
)


def _front_matter(md: str) -> tuple[dict[str, object], str]:
    """The note's front matter, parsed by a YAML parser, and the Markdown after it."""
    assert md.startswith("---\n"), md[:80]
    dumped, end, body = md[4:].partition("\n---\n")
    assert end, "the front matter is not closed"
    assert "\n---" not in dumped  # nothing inside could be taken for its end
    parsed = yaml.safe_load(dumped)
    assert isinstance(parsed, dict)
    assert body.startswith("\n# ")  # a blank line, then the note as before
    return parsed, body[1:]


def _md_paragraphs(md: str) -> list[re.Match[str]]:
    body = md.split("## Transcript\n\n", 1)[1]
    matches = [LINK.match(line) for line in body.splitlines() if line]
    assert all(matches), body
    return matches  # type: ignore[return-value]


def test_srt_golden() -> None:
    assert render(SHORT, "srt", provenance=PROVENANCE) == (
        "1\n00:00:00,000 --> 00:00:01,540\nHey & hi\n\n"
        "2\n00:00:01,540 --> 00:00:03,000\n[Music]\n\n"  # clipped to the next start
        "3\n00:00:03,000 --> 00:00:04,500\ntwo\nlines\n\n"
        "4\n00:00:04,500 --> 00:00:05,500\nend\n"
    )


def test_vtt_golden() -> None:
    vtt = render(SHORT, "vtt", provenance=PROVENANCE)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.540\nHey & hi\n\n")
    assert "00:00:01.540 --> 00:00:03.000\n[Music]\n" in vtt
    assert vtt.endswith("00:00:04.500 --> 00:00:05.500\nend\n")


def test_subtitle_timing_past_an_hour() -> None:
    late = _transcript(Snippet("late", 3725.25, 2.5))
    assert "01:02:05,250 --> 01:02:07,750" in render(late, "srt", provenance=PROVENANCE)
    assert "01:02:05.250 --> 01:02:07.750" in render(late, "vtt", provenance=PROVENANCE)


def test_json_document() -> None:
    doc = json.loads(render(replace(SHORT, title="Café"), "json", provenance=PROVENANCE))
    assert list(doc) == [
        "video_id", "url", "title", "channel", "language", "language_code",
        "is_generated", "translated_from", "duration", "chapters", "provenance", "snippets",
    ]  # fmt: skip
    assert doc["url"] == f"https://www.youtube.com/watch?v={ID}"
    assert doc["title"] == "Café" and doc["translated_from"] is None
    assert doc["duration"] == pytest.approx(5.5) and doc["chapters"] == []
    assert doc["provenance"] == {"exit_ip": "198.51.100.7", "fetched_at": "2025-03-04T04:07:08+00:00", "attempts": 3}
    assert doc["snippets"][1] == {"text": "[Music]", "start": 1.54, "duration": 2.0}  # cues kept
    assert [s["text"] for s in doc["snippets"]] == ["Hey & hi", "[Music]", "two\nlines", "end"]
    assert "Café" in render(replace(SHORT, title="Café"), "json", provenance=PROVENANCE)  # not \\u-escaped


def test_markdown_header_and_provenance() -> None:
    _, body = _front_matter(render(SHORT, "md", provenance=PROVENANCE))
    head = body.split("## Transcript", 1)[0]
    assert head == (
        "# Linear Algebra, Lecture 1\n\n"
        "- **Channel:** MIT OpenCourseWare\n"
        f"- **Video:** <https://www.youtube.com/watch?v={ID}>\n"
        "- **Language:** English (en), manual\n"
        "- **Duration:** 00:05\n"
        "- **Fetched:** 2025-03-04 04:07 UTC via Tor exit 198.51.100.7 (attempt 3)\n\n"
    )


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"is_generated": True}, "English (en), auto-generated"),
        ({"is_generated": True, "language": "English (auto-generated)"}, "English (auto-generated) (en)\n"),
        (
            {"is_generated": True, "language": "French", "language_code": "fr", "translated_from": "de"},
            "French (fr), auto-generated, translated from de",
        ),
    ],
)
def test_markdown_language_labels(fields: dict[str, object], label: str) -> None:
    md = render(_transcript(Snippet("x", 0, 1), **fields), "md", provenance=PROVENANCE)
    assert f"- **Language:** {label}" in md


def test_duration_is_youtubes_figure_when_known() -> None:
    assert "- **Duration:** 00:05\n" in render(SHORT, "md", provenance=PROVENANCE)  # the last cue's end
    known = replace(SHORT, video_duration=3725)  # videoDetails.lengthSeconds
    assert "- **Duration:** 1:02:05\n" in render(known, "md", provenance=PROVENANCE)
    assert json.loads(render(known, "json", provenance=PROVENANCE))["duration"] == 3725


def test_markdown_without_title_channel_or_exit() -> None:
    unknown = Provenance(exit_ip=None, fetched_at=datetime(2025, 1, 1, tzinfo=UTC))
    md = render(replace(SHORT, title=None, channel=None), "md", provenance=unknown)
    fields, body = _front_matter(md)
    assert body.startswith(f"# {ID}\n")
    assert (fields["title"], fields["channel"], fields["video_id"]) == (None, None, ID)
    assert "Channel" not in md
    assert "- **Fetched:** 2025-01-01 00:00 UTC via unknown Tor exit\n" in md


def test_markdown_escapes_title_and_text() -> None:
    hostile = _transcript(Snippet("use *args and <script>x</script> [a](b)", 0, 1), title="**Bold** [x](y) <b>_")
    fields, body = _front_matter(render(hostile, "md", provenance=PROVENANCE))
    assert body.startswith(r"# \*\*Bold\*\* \[x\](y) \<b\>\_" + "\n")
    assert fields["title"] == "**Bold** [x](y) <b>_"  # front matter is YAML, not Markdown
    assert r"use \*args and \<script\>x\</script\> \[a\](b)" in body


def test_markdown_drops_cues_collapses_whitespace_and_links_seconds() -> None:
    md = render(SHORT, "md", provenance=PROVENANCE)
    (paragraph,) = _md_paragraphs(md)
    assert paragraph.string.endswith(") Hey & hi two lines end")
    assert (paragraph["clock"], paragraph["t"], paragraph["id"]) == ("00:00", "0", ID)
    assert "[Music]" not in md


@pytest.mark.parametrize("cue", ["[Music]", "[Applause]", " [ Laughter ] ", "♪", "♪♪", "[Music] ♪", "\n"])
def test_cue_only_snippets_are_dropped_from_reading_formats_only(cue: str) -> None:
    t = _transcript(Snippet("before.", 0, 1), Snippet(cue, 1, 1), Snippet("after", 2, 1))
    assert render(t, "txt", provenance=PROVENANCE) == "before. after\n"
    assert cue in render(t, "srt", provenance=PROVENANCE)


@pytest.mark.parametrize("text", ["♪ never gonna give you up ♪", "[Music] so today", "see [1]"])
def test_snippets_with_words_are_kept(text: str) -> None:
    t = _transcript(Snippet(text, 0, 1))
    assert render(t, "txt", provenance=PROVENANCE) == text + "\n"


def _every_five_seconds(count: int, sentence_ends: set[int], start: float = 0.0) -> Transcript:
    return _transcript(
        *(Snippet(f"w{i}" + ("." if i in sentence_ends else ""), start + 5.0 * i, 5.0) for i in range(count))
    )


def test_paragraphs_break_at_the_first_sentence_end_after_45_seconds() -> None:
    # Sentence ends at 20 s (too early) and 50 s: the break comes before the snippet at 55 s.
    t = _every_five_seconds(14, sentence_ends={4, 10})
    starts = [int(p["t"]) for p in _md_paragraphs(render(t, "md", provenance=PROVENANCE))]
    assert starts == [0, 55]
    assert render(t, "txt", provenance=PROVENANCE).split("\n\n")[0].endswith("w9 w10.")


def test_paragraphs_break_at_60_seconds_without_punctuation() -> None:
    t = _every_five_seconds(30, sentence_ends=set())
    starts = [int(p["t"]) for p in _md_paragraphs(render(t, "md", provenance=PROVENANCE))]
    assert starts == [0, 60, 120]


def test_markdown_timestamps_past_an_hour_link_to_the_right_second() -> None:
    t = _every_five_seconds(30, sentence_ends=set(), start=3540.7)
    paragraphs = _md_paragraphs(render(t, "md", provenance=PROVENANCE))
    assert [(p["clock"], p["t"]) for p in paragraphs] == [("59:00", "3540"), ("1:00:00", "3600"), ("1:01:00", "3660")]
    assert "- **Duration:** 1:01:30" in render(t, "md", provenance=PROVENANCE)


def test_txt_is_paragraphs_without_timestamps() -> None:
    t = _every_five_seconds(30, sentence_ends=set())
    paragraphs = render(t, "txt", provenance=PROVENANCE).rstrip("\n").split("\n\n")
    assert len(paragraphs) == 3
    assert paragraphs[1].startswith("w12 w13")
    assert "youtube.com" not in "".join(paragraphs)


def test_empty_transcript_renders_in_every_format() -> None:
    empty = _transcript()
    for fmt in FORMATS:
        assert render(empty, fmt, provenance=PROVENANCE).endswith("\n")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        render(SHORT, "pdf", provenance=PROVENANCE)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "00:00"), (59.99, "00:59"), (61, "01:01"), (3599, "59:59"), (3600, "1:00:00"), (36061, "10:01:01")],
)
def test_clock(seconds: float, expected: str) -> None:
    assert clock(seconds) == expected


# --- front matter ----------------------------------------------------------------------------


def test_front_matter_names_the_video_for_obsidian_and_dataview() -> None:
    chaptered = replace(SHORT, video_duration=3725, chapters=(Chapter("Intro", 0), Chapter("Rows: a view", 61.7)))
    fields, _ = _front_matter(render(chaptered, "md", provenance=PROVENANCE))
    assert fields == {
        "title": "Linear Algebra, Lecture 1",
        "channel": "MIT OpenCourseWare",
        "url": f"https://www.youtube.com/watch?v={ID}",
        "video_id": ID,
        "duration": 3725,
        "language": "en",
        "chapters": [{"title": "Intro", "start": 0}, {"title": "Rows: a view", "start": 61}],
        "fetched": "2025-03-04T04:07:08Z",  # UTC, ISO 8601
    }


@pytest.mark.parametrize(
    "title",
    [
        'He said "no": it\'s over',
        "Part 1: Intro # not a comment",
        "---",
        "- a list? [x] {y} &z *w !v %u @t `s",
        "yes",
        "null",
        "1984",
        "1e3",
        "0o17",
        "2025-01-01",
        " padded ",
        "tab\there \\ back\\slash",
        "Café 😀 \u202eevil\u200b",
        "bell\x07 and nul\x00",
    ],
)
def test_front_matter_quotes_whatever_needs_quoting(title: str) -> None:
    transcript = replace(SHORT, title=title, channel=title, chapters=(Chapter(title.strip() or "x", 0),))
    fields, body = _front_matter(render(transcript, "md", provenance=PROVENANCE))
    one_line = " ".join(title.split())
    assert fields["title"] == fields["channel"] == one_line
    assert fields["chapters"] == [{"title": title.strip() or "x", "start": 0}]
    assert body.startswith("# ")


def test_line_breaks_in_titles_become_spaces() -> None:
    transcript = replace(SHORT, title="Line one\n---\nline\u2028three\x85four\r\nfive")
    fields, body = _front_matter(render(transcript, "md", provenance=PROVENANCE))
    assert fields["title"] == "Line one --- line three four five"
    assert body.startswith("# Line one --- line three four five\n\n")


def test_yaml_1_2_numbers_are_quoted_for_obsidian() -> None:
    """PyYAML (YAML 1.1) reads ``1e3`` as a string either way; Obsidian's YAML 1.2 would not."""
    md = render(replace(SHORT, title="1e3", channel="0x1F"), "md", provenance=PROVENANCE)
    assert "\ntitle: '1e3'\n" in md and "\nchannel: '0x1F'\n" in md


COURSE = Course(
    kind=CourseKind.PLAYLIST,
    id="PLUl4u3cNGP63oMNUHXqIUcrkS2PivhN3k",
    title="18.06 Linear Algebra: Spring 2010",
    channel="MIT OpenCourseWare",
    handle="@mitocw",
    url="https://www.youtube.com/playlist?list=PLUl4u3cNGP63oMNUHXqIUcrkS2PivhN3k",
    entries=(CourseEntry(ID, "Lecture 1", 2400.0, 1), CourseEntry("abcdefghijk", "Lecture 2", 2500.0, 2)),
)


def test_a_course_video_says_its_playlist_and_position() -> None:
    provenance = replace(PROVENANCE, course=CourseContext.of(COURSE, COURSE.entries[1]))
    fields, _ = _front_matter(render(SHORT, "md", provenance=provenance))
    assert list(fields)[-2:] == ["playlist", "position"]
    assert fields["playlist"] == {"title": "18.06 Linear Algebra: Spring 2010", "id": COURSE.id, "kind": "playlist"}
    assert fields["position"] == 2
    doc = json.loads(render(SHORT, "json", provenance=provenance))
    assert (doc["playlist"], doc["position"]) == (fields["playlist"], 2)


def test_a_channel_video_says_its_channel_course() -> None:
    course = CourseContext(
        title="Professor Loopback", id="UCabcdefghijklmnopqrstuv", position=7, kind=CourseKind.CHANNEL
    )
    fields, _ = _front_matter(render(SHORT, "md", provenance=replace(PROVENANCE, course=course)))
    assert fields["channel"] == "MIT OpenCourseWare"  # the video's channel, as always
    assert fields["playlist"] == {"title": "Professor Loopback", "id": course.id, "kind": "channel"}
    assert fields["position"] == 7


# --- chapters ----------------------------------------------------------------------------------

CHAPTERS = (Chapter("Intro", 10.0), Chapter("Vectors *and* [rows]", 62.5), Chapter("Part #", 130.0))


def _sections(md: str) -> dict[str, list[int]]:
    """Each ``## `` section of the note's transcript and the seconds its paragraphs link to."""
    body = md.split("\n## ", 2)[2] if "## Chapters" in md else md.split("\n## ", 1)[1]
    sections: dict[str, list[int]] = {}
    for block in ("## " + body).split("\n## ")[0:]:
        heading, _, text = block.removeprefix("## ").partition("\n")
        sections[heading] = [int(LINK.match(line)["t"]) for line in text.splitlines() if line]  # type: ignore[index]
    return sections


def test_chapters_are_listed_with_links_to_their_second() -> None:
    md = render(replace(_every_five_seconds(40, set()), chapters=CHAPTERS), "md", provenance=PROVENANCE)
    listed = md.split("## Chapters\n\n", 1)[1].split("\n\n", 1)[0]
    assert listed.splitlines() == [
        f"- [00:10](https://www.youtube.com/watch?v={ID}&t=10s) Intro",
        rf"- [01:02](https://www.youtube.com/watch?v={ID}&t=62s) Vectors \*and\* \[rows\]",
        f"- [02:10](https://www.youtube.com/watch?v={ID}&t=130s) Part #",
    ]
    assert "## Transcript" not in md


def test_the_transcript_is_split_into_a_section_per_chapter() -> None:
    # A snippet every 5 s from 0 to 195 s, no punctuation: paragraphs would run 60 s each.
    md = render(replace(_every_five_seconds(40, set()), chapters=CHAPTERS), "md", provenance=PROVENANCE)
    assert _sections(md) == {
        BEFORE_CHAPTERS: [0],
        "Intro": [10],  # 10..60: shorter than a paragraph
        r"Vectors \*and\* \[rows\]": [65, 125],  # the first snippet from 62.5 s on; a 60 s break
        r"Part \#": [130, 190],
    }


def test_paragraphs_never_straddle_a_chapter_boundary() -> None:
    chapters = tuple(Chapter(f"C{i}", start) for i, start in enumerate((0, 7, 33, 34, 120)))
    transcript = replace(_every_five_seconds(30, {3, 9}), chapters=chapters)
    sections = _sections(render(transcript, "md", provenance=PROVENANCE))
    assert list(sections) == ["C0", "C1", "C2", "C3", "C4"]  # nothing before 0:00; C2 has no snippet
    bounds = [*(c.start for c in chapters), float("inf")]
    for (title, starts), low, high in zip(sections.items(), bounds, bounds[1:], strict=False):
        assert all(low <= start < high for start in starts), title
    assert sections["C2"] == [] and sections["C3"] == [35, 95]


def test_txt_and_json_carry_the_chapters() -> None:
    transcript = replace(_every_five_seconds(40, set()), chapters=CHAPTERS)
    text = render(transcript, "txt", provenance=PROVENANCE)
    blocks = text.rstrip("\n").split("\n\n")
    assert [b for b in blocks if b.startswith("[")] == [
        "[00:10] Intro",
        "[01:02] Vectors *and* [rows]",
        "[02:10] Part #",
    ]
    assert blocks[0].startswith("w0 w1") and blocks[1] == "[00:10] Intro"
    doc = json.loads(render(transcript, "json", provenance=PROVENANCE))
    assert doc["chapters"] == [
        {"title": "Intro", "start": 10},
        {"title": "Vectors *and* [rows]", "start": 62},
        {"title": "Part #", "start": 130},
    ]


def test_subtitles_ignore_chapters() -> None:
    chaptered = replace(SHORT, chapters=CHAPTERS)
    for fmt in ("srt", "vtt"):
        assert render(chaptered, fmt, provenance=PROVENANCE) == render(SHORT, fmt, provenance=PROVENANCE)


def test_read_front_matter_gives_back_what_was_written() -> None:
    md = render(replace(SHORT, title='a: "b" # c', chapters=CHAPTERS), "md", provenance=PROVENANCE)
    fields, body = _front_matter(md)
    assert read_front_matter(md) == (fields, "\n" + body)
    crlf = read_front_matter(md.replace("\n", "\r\n"))
    assert crlf is not None and crlf[0] == fields


@pytest.mark.parametrize(
    "text",
    ["# An older note\n\n- **Video:** x\n", "---\ntitle: x\n", "---\n- a list\n---\n", "---\n: [\n---\n", ""],
)
def test_read_front_matter_of_notes_without_it(text: str) -> None:
    assert read_front_matter(text) is None
