"""Chapters from a watch page: the player bar, else the key moments, else the description.

The shapes are real YouTube's (ytInitialData of watch pages, as yt-dlp reads them); the recorded
real page of youtube-transcript-api's test assets has ten key moments and no player-bar chapters.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest

from tests.test_fake_youtube import direct_session
from tests.test_recordings_lab import RECORDED_CHAPTERS, cached  # noqa: F401 (a fixture)
from yt_study_buddy.testing import recordings
from yt_study_buddy.testing.fake_youtube import FakeYouTube, default_video, with_chapters
from yt_study_buddy.testing.recordings import Recordings
from yt_study_buddy.youtube._chapters import (
    Chapter,
    description_chapters,
    extract_chapters,
    initial_data,
    macro_marker_chapters,
    player_bar_chapters,
)
from yt_study_buddy.youtube._transcripts import fetch_transcript


def _chapter_renderers(*chapters: tuple[str, int]) -> list[dict[str, object]]:
    return [
        {"chapterRenderer": {"title": {"simpleText": title}, "timeRangeStartMillis": millis}}
        for title, millis in chapters
    ]


def player_bar(markers: dict[str, list[tuple[str, int]]]) -> dict[str, object]:
    """ytInitialData with the current player bar: ``markersMap`` entries by key."""
    markers_map = [{"key": key, "value": {"chapters": _chapter_renderers(*items)}} for key, items in markers.items()]
    bar = {"multiMarkersPlayerBarRenderer": {"visibleOnLoad": {"key": ""}, "markersMap": markers_map}}
    return {
        "playerOverlays": {
            "playerOverlayRenderer": {"decoratedPlayerBarRenderer": {"decoratedPlayerBarRenderer": {"playerBar": bar}}}
        }
    }


def key_moments(*markers: tuple[object, object]) -> dict[str, object]:
    """ytInitialData with one macro-markers panel after an unrelated one: (title, time) items."""
    items = [
        {"macroMarkersListItemRenderer": {"title": title, "timeDescription": time, "carouselType": "x"}}
        for title, time in markers
    ]
    return {
        "engagementPanels": [
            {"engagementPanelSectionListRenderer": {"content": {"sectionListRenderer": {}}}},
            {"engagementPanelSectionListRenderer": {"content": {"macroMarkersListRenderer": {"contents": items}}}},
        ]
    }


def page(data: object) -> str:
    """A watch page embedding ``data`` the way YouTube does."""
    return f"<html><script>var ytInitialData = {json.dumps(data)};</script><script>x = 1;</script></html>"


# --- the player bar ---------------------------------------------------------------------------


def test_player_bar_chapters_from_the_markers_map() -> None:
    data = player_bar({"DESCRIPTION_CHAPTERS": [("Intro", 0), ("Vectors", 61_500), ("Matrices", 300_000)]})
    assert player_bar_chapters(data, 600) == (Chapter("Intro", 0.0), Chapter("Vectors", 61.5), Chapter("Matrices", 300))


def test_the_uploaders_chapters_come_before_youtubes_automatic_ones() -> None:
    data = player_bar({"AUTO_CHAPTERS": [("Auto", 0), ("Auto 2", 5000)], "DESCRIPTION_CHAPTERS": [("Mine", 0)]})
    assert player_bar_chapters(data, 600) == (Chapter("Mine", 0.0),)
    auto_only = player_bar({"HEATSEEKER": [("Heat", 0)], "AUTO_CHAPTERS": [("Auto", 0), ("Auto 2", 5000)]})
    assert [c.title for c in player_bar_chapters(auto_only, 600)] == ["Auto", "Auto 2"]


def test_player_bar_chapters_of_older_pages() -> None:
    bar = {"chapteredPlayerBarRenderer": {"chapters": _chapter_renderers(("One", 0), ("Two", 10_000))}}
    data = {
        "playerOverlays": {
            "playerOverlayRenderer": {"decoratedPlayerBarRenderer": {"decoratedPlayerBarRenderer": {"playerBar": bar}}}
        }
    }
    assert player_bar_chapters(data, None) == (Chapter("One", 0.0), Chapter("Two", 10.0))


def test_untitled_unordered_and_late_chapters_are_left_out() -> None:
    data = player_bar(
        {
            "DESCRIPTION_CHAPTERS": [
                ("A", 0),
                ("  ", 5_000),
                ("B", 10_000),
                ("Back", 9_000),
                ("C", 20_000),
                ("End", 99_000),
            ]
        }
    )
    assert player_bar_chapters(data, 60) == (Chapter("A", 0.0), Chapter("B", 10.0), Chapter("C", 20.0))


# --- key moments (macro markers) -------------------------------------------------------------


def test_key_moments_read_their_shown_times_and_either_text_form() -> None:
    data = key_moments(
        ({"simpleText": "Build Quality"}, {"simpleText": "0:39"}),
        ({"runs": [{"text": "Screen "}, {"text": "and Pen"}]}, {"simpleText": "1:06"}),
        ({"simpleText": "Long\nTitle"}, {"runs": [{"text": "1:02:03"}]}),
    )
    assert macro_marker_chapters(data, 4000) == (
        Chapter("Build Quality", 39.0),
        Chapter("Screen and Pen", 66.0),
        Chapter("Long Title", 3723.0),  # one line
    )


def test_key_moments_without_usable_times_give_nothing() -> None:
    data = key_moments(({"simpleText": "A"}, {"simpleText": "soon"}), ({"simpleText": "B"}, None))
    assert macro_marker_chapters(data, 600) == ()


# --- the description -------------------------------------------------------------------------


def test_description_timestamps_time_first() -> None:
    description = (
        "Lecture 3 of the course.\r\n\r\n0:00 Intro\r\n01:30 - Part one: the thing\r\n"
        "1:00:05 Finale\r\nSlides: https://example.com/at/12:30\n"
    )
    assert description_chapters(description, 4000) == (
        Chapter("Intro", 0.0),
        Chapter("Part one: the thing", 90.0),
        Chapter("Finale", 3605.0),
    )


def test_description_timestamps_time_last() -> None:
    assert description_chapters("Intro - 0:00\nMain part 2:00\nQ&A? 10:00", None) == (
        Chapter("Intro", 0.0),
        Chapter("Main part", 120.0),
        Chapter("Q&A", 600.0),
    )


@pytest.mark.parametrize(
    "description",
    [
        "0:00 Only one",  # fewer than two
        "0:10 Intro\n2:00 Main",  # not from 0:00
        "",
        "Meet at 12:30 tomorrow\nor 14:00",  # times inside sentences
    ],
)
def test_descriptions_without_chapters(description: str) -> None:
    assert description_chapters(description, 600) == ()


def test_description_lines_out_of_order_or_past_the_end_are_skipped() -> None:
    described = "0:00 Intro\n5:00 Main\n2:00 Aside\n7:00 Outro\n20:00 Bonus"
    assert [c.title for c in description_chapters(described, 600)] == ["Intro", "Main", "Outro"]


# --- which source, and robustness ------------------------------------------------------------


def test_the_player_bar_wins_then_key_moments_then_the_description() -> None:
    bar = player_bar({"DESCRIPTION_CHAPTERS": [("Bar", 0), ("Bar 2", 5000)]})
    moments = key_moments(({"simpleText": "Moment"}, {"simpleText": "0:39"}))
    description = "0:00 Described\n1:00 Described 2"
    both = {**bar, **moments}
    assert [c.title for c in extract_chapters(page(both), description=description, duration=600)] == ["Bar", "Bar 2"]
    assert [c.title for c in extract_chapters(page(moments), description=description, duration=600)] == ["Moment"]
    assert [c.title for c in extract_chapters(page({}), description=description, duration=600)] == [
        "Described",
        "Described 2",
    ]
    assert extract_chapters(None, description=description, duration=None)[0].title == "Described"
    assert extract_chapters(page({}), description=None, duration=600) == ()


def test_window_assignment_form_of_the_initial_data() -> None:
    data = player_bar({"DESCRIPTION_CHAPTERS": [("A", 0), ("B", 5000)]})
    html = f'<script>window["ytInitialData"] = {json.dumps(data)};</script>'
    assert len(extract_chapters(html, description=None, duration=60)) == 2


def _mutations(value: object) -> Iterator[object]:
    """``value`` with each node in turn replaced by something of the wrong shape."""
    wrong: tuple[object, ...] = (None, 7, True, "text", [], {}, [None], {"simpleText": 3}, float("nan"), -1)
    if isinstance(value, dict):
        for key in value:
            for child in (*wrong, *_mutations(value[key])):
                changed = copy.copy(value)
                changed[key] = child
                yield changed
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for child in (*wrong, *_mutations(item)):
                changed_list = list(value)
                changed_list[index] = child
                yield changed_list


def test_a_malformed_page_gives_no_chapters_never_an_exception() -> None:
    valid = {
        **player_bar({"DESCRIPTION_CHAPTERS": [("A", 0), ("B", 5000)]}),
        **key_moments(({"simpleText": "M"}, {"simpleText": "0:39"})),
    }
    count = 0
    for data in _mutations(valid):
        count += 1
        chapters = extract_chapters(page(data), description="0:00 x\n", duration=60)
        assert all(isinstance(c, Chapter) and c.title and c.start >= 0 for c in chapters)
    assert count > 200
    broken = ["var ytInitialData = {", "var ytInitialData = [1, 2];", "var ytInitialData = " + "[" * 100_000, "<html>"]
    for html in broken:
        assert extract_chapters(html, description=None, duration=60) == ()


# --- the recorded real page ------------------------------------------------------------------


def test_the_recorded_real_page_has_ten_chapters(cached: Recordings) -> None:
    video = cached.video()
    html = cached.read(recordings.WATCH_PAGE).decode()
    assert player_bar_chapters(initial_data(html), video.length_seconds) == ()  # this page has none there
    chapters = extract_chapters(html, description=video.description, duration=video.length_seconds)
    assert chapters == RECORDED_CHAPTERS


# --- the fake YouTube's watch page (over loopback, no Tor) -----------------------------------


def test_the_fakes_watch_page_shows_its_chapters_in_both_places(fake_youtube: FakeYouTube) -> None:
    video = with_chapters(default_video("fakeChaptr1"))
    fake_youtube.add_video(video)
    assert [c.title for c in video.chapters] == ["Introduction", "Worked example", "Recap and exam tips"]
    starts = [s.start for s in video.snippets()]
    assert video.chapters[0].start == 0 and all(c.start == int(c.start) for c in video.chapters)
    assert all(any(c.start <= start < c.start + 1 for start in starts) for c in video.chapters)
    with direct_session(fake_youtube) as session:
        html = session.get(f"https://www.youtube.com/watch?v={video.video_id}").text
        transcript = fetch_transcript(session, video.video_id)
    data = initial_data(html)
    assert player_bar_chapters(data, video.length) == macro_marker_chapters(data, video.length) == video.chapters
    assert transcript.chapters == video.chapters


def test_the_fakes_videos_have_no_chapters_unless_given(fake_youtube: FakeYouTube) -> None:
    with direct_session(fake_youtube) as session:
        html = session.get("https://www.youtube.com/watch?v=noChapters1").text
        assert fetch_transcript(session, "noChapters1").chapters == ()
    assert initial_data(html) is not None  # the page has ytInitialData, just no chapters in it
