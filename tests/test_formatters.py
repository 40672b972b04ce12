from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from yt_study_buddy.notes._formatters import FORMATS, Provenance, clock, render
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
        "is_generated", "translated_from", "duration", "provenance", "snippets",
    ]  # fmt: skip
    assert doc["url"] == f"https://www.youtube.com/watch?v={ID}"
    assert doc["title"] == "Café" and doc["translated_from"] is None
    assert doc["duration"] == pytest.approx(5.5)
    assert doc["provenance"] == {"exit_ip": "198.51.100.7", "fetched_at": "2025-03-04T04:07:08+00:00", "attempts": 3}
    assert doc["snippets"][1] == {"text": "[Music]", "start": 1.54, "duration": 2.0}  # cues kept
    assert [s["text"] for s in doc["snippets"]] == ["Hey & hi", "[Music]", "two\nlines", "end"]
    assert "Café" in render(replace(SHORT, title="Café"), "json", provenance=PROVENANCE)  # not \\u-escaped


def test_markdown_header_and_provenance() -> None:
    md = render(SHORT, "md", provenance=PROVENANCE)
    head = md.split("## Transcript", 1)[0]
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
    assert md.startswith(f"# {ID}\n")
    assert "Channel" not in md
    assert "- **Fetched:** 2025-01-01 00:00 UTC via unknown Tor exit\n" in md


def test_markdown_escapes_title_and_text() -> None:
    hostile = _transcript(Snippet("use *args and <script>x</script> [a](b)", 0, 1), title="**Bold** [x](y) <b>_")
    md = render(hostile, "md", provenance=PROVENANCE)
    assert md.startswith(r"# \*\*Bold\*\* \[x\](y) \<b\>\_" + "\n")
    assert r"use \*args and \<script\>x\</script\> \[a\](b)" in md


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
