"""Chapters and front matter end to end: the CLI through the private Tor network, the fake
YouTube serving chapters on its watch page (the player bar and the chapters panel, in real
YouTube's shape) or in a description. The recorded real page is in test_recordings_lab."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.test_cli_lab import Run
from yt_study_buddy.notes._formatters import BEFORE_CHAPTERS
from yt_study_buddy.testing.fake_youtube import FakeTrack, FakeVideo, FakeYouTube
from yt_study_buddy.youtube._chapters import Chapter
from yt_study_buddy.youtube._transcripts import Snippet

pytestmark = pytest.mark.lab

#: One sentence every 4 s for 200 s: 60 s paragraphs, unless a chapter starts first.
SPEECH = tuple(Snippet(f"Sentence {i}.", 4.0 * i, 4.0) for i in range(50))
CHAPTERED = FakeVideo(
    "chAptered01",
    'Lecture 4: "Eigenvalues" & more',
    "Fake Lecture Hall",
    tracks=(FakeTrack("en", "English", snippets=SPEECH),),
    length_seconds=200,
    chapters=(Chapter("Why eigenvalues?", 10), Chapter("Q&A: </script> #1", 90), Chapter("Wrap-up", 170)),
)
DESCRIBED = FakeVideo(
    "dEscribed01",
    "Lecture 5",
    "Fake Lecture Hall",
    tracks=(FakeTrack("en", "English", snippets=SPEECH),),
    length_seconds=200,
    description="Lecture 5 of the course.\n\n0:00 Intro\n1:00 Main part\n2:30 Summary\n\nSlides: https://example.com",
)
LINE = re.compile(r"^\[\d\d:\d\d\]\(https://www\.youtube\.com/watch\?v=(?P<id>[\w-]{11})&t=(?P<t>\d+)s\) ")


def sections(body: str) -> dict[str, list[int]]:
    """Each ``## `` section after the chapter list: the seconds its paragraphs link to."""
    found: dict[str, list[int]] = {}
    for block in body.split("\n## ")[1:]:
        heading, _, text = block.partition("\n")
        if heading != "Chapters":
            found[heading] = [int(m["t"]) for m in map(LINE.match, text.splitlines()) if m]
    return found


def note(run: Run, video_id: str) -> tuple[dict[str, object], str]:
    text = run.notes()[video_id].read_text()
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    fields = yaml.safe_load(head)  # a YAML parser, not ours
    assert isinstance(fields, dict)
    return fields, body


@pytest.mark.timeout(180)
def test_notes_have_front_matter_and_a_section_per_chapter(lab, fake_youtube: FakeYouTube, tmp_path) -> None:
    fake_youtube.add_video(CHAPTERED)
    fake_youtube.add_video(DESCRIBED)
    run = Run(tmp_path, fake_youtube)
    done = run("--format", "md", "--format", "json", CHAPTERED.video_id, f"https://youtu.be/{DESCRIBED.video_id}")
    assert done.returncode == 0, done.stderr

    fields, body = note(run, CHAPTERED.video_id)
    assert fields["title"] == 'Lecture 4: "Eigenvalues" & more' and fields["channel"] == "Fake Lecture Hall"
    assert (fields["video_id"], fields["duration"], fields["language"]) == (CHAPTERED.video_id, 200, "en")
    assert fields["url"] == f"https://www.youtube.com/watch?v={CHAPTERED.video_id}"
    assert fields["chapters"] == [
        {"title": "Why eigenvalues?", "start": 10},
        {"title": "Q&A: </script> #1", "start": 90},
        {"title": "Wrap-up", "start": 170},
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(fields["fetched"]))
    assert "playlist" not in fields and "position" not in fields  # not fetched as part of a course
    assert body.startswith('\n# Lecture 4: "Eigenvalues" & more\n')
    assert f"- [01:30](https://www.youtube.com/watch?v={CHAPTERED.video_id}&t=90s) Q&A: \\</script\\> #1\n" in body
    assert sections(body) == {
        BEFORE_CHAPTERS: [0],  # the snippets at 0, 4 and 8 s
        "Why eigenvalues?": [12, 60],  # from the first snippet at or after 10 s; 45 s and a full stop
        r"Q&A: \</script\> \#1": [92, 140],
        "Wrap-up": [172],
    }
    doc = json.loads(run.notes(".json")[CHAPTERED.video_id].read_text())
    assert doc["chapters"] == fields["chapters"]

    fields, body = note(run, DESCRIBED.video_id)
    assert [c["title"] for c in fields["chapters"]] == ["Intro", "Main part", "Summary"]  # type: ignore[attr-defined]
    assert list(sections(body)) == ["Intro", "Main part", "Summary"]  # nothing before 0:00

    for video in (CHAPTERED, DESCRIBED):  # the chapters came with the fetch: no extra request
        assert [e.path for e in fake_youtube.served(video_id=video.video_id)] == [
            "/watch",
            "/youtubei/v1/player",
            "/api/timedtext",
        ]
