from __future__ import annotations

import re

import pytest

from yt_study_buddy._exceptions import InvalidVideoInput
from yt_study_buddy.youtube._video_ids import parse_video_id, read_video_list, watch_url

ID = "dQw4w9WgXcQ"
ODD_ID = "-_aZ09-_aZ0"  # every character class an id may use, starting with a dash


@pytest.mark.parametrize(
    "text",
    [
        ID,
        f"  {ID}\n",
        f"https://www.youtube.com/watch?v={ID}",
        f"http://www.youtube.com/watch?v={ID}",
        f"www.youtube.com/watch?v={ID}",
        f"youtube.com/watch?v={ID}",
        f"//www.youtube.com/watch?v={ID}",
        f"https://youtube.com/watch?v={ID}",
        f"https://m.youtube.com/watch?v={ID}",
        f"https://music.youtube.com/watch?v={ID}&feature=share",
        f"https://www.youtube.com/watch?feature=youtu.be&v={ID}",
        f"https://www.youtube.com/watch?v={ID}&t=1m2s",
        f"https://www.youtube.com/watch?v={ID}&t=62",
        f"https://www.youtube.com/watch?v={ID}&list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&index=3",
        f"https://www.youtube.com/watch?v={ID}#t=30",
        f"https://WWW.YouTube.COM/watch?v={ID}",
        f"https://www.youtube.com./watch?v={ID}",
        f"https://www.youtube.com:443/watch?v={ID}",
        f"https://youtu.be/{ID}",
        f"youtu.be/{ID}",
        f"https://youtu.be/{ID}/",
        f"https://youtu.be/{ID}?si=AbCdEf123&t=42",
        f"https://youtu.be/{ID}?t=1h2m3s#frag",
        f"https://www.youtube.com/shorts/{ID}",
        f"https://youtube.com/shorts/{ID}?si=abc",
        f"https://www.youtube.com/embed/{ID}",
        f"https://www.youtube.com/embed/{ID}?start=10&autoplay=1",
        f"https://www.youtube-nocookie.com/embed/{ID}",
        f"https://youtube-nocookie.com/embed/{ID}?rel=0",
        f"https://www.youtube.com/live/{ID}",
        f"https://www.youtube.com/live/{ID}?feature=shared",
        f"https://www.youtube.com/v/{ID}?version=3",
        f"https://www.youtube.com/e/{ID}",
        f"https://m.youtube.com/shorts/{ID}",
    ],
)
def test_accepts_every_url_form(text: str) -> None:
    assert parse_video_id(text) == ID


def test_ids_may_start_with_a_dash_and_use_underscores() -> None:
    assert parse_video_id(ODD_ID) == ODD_ID
    assert parse_video_id(f"https://youtu.be/{ODD_ID}") == ODD_ID


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty input"),
        ("   ", "empty input"),
        ("abc", "has 3 characters"),
        (ID + "X", "has 12 characters"),
        (f"https://example.com/watch?v={ID}", "not a YouTube URL"),
        (f"https://youtube.com.evil.example/watch?v={ID}", "not a YouTube URL"),
        (f"https://notyoutube.com/watch?v={ID}", "not a YouTube URL"),
        (f"https://www.youtube.com@evil.example/watch?v={ID}", "not a YouTube URL"),
        (f"ftp://www.youtube.com/watch?v={ID}", "not a YouTube URL"),
        (f"https://vimeo.com/{ID}", "not a YouTube URL"),
        ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", "playlist"),
        ("https://www.youtube.com/watch?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", "playlist"),
        ("https://www.youtube.com/embed/videoseries?list=PLx0sYbCqOb8TBPRdmBHs5", "playlist"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXc", "invalid video id 'dQw4w9WgXc'"),
        (f"https://www.youtube.com/watch?v={ID}X", "invalid video id"),
        ("https://www.youtube.com/watch?v=dQw4w9Wg%21cQ", "invalid video id"),
        (f"https://youtu.be/{ID}/extra", "no video id"),
        ("https://youtu.be/", "no video id"),
        ("https://www.youtube.com/watch", "not a video URL"),
        ("https://www.youtube.com/@SomeChannel", "not a video URL"),
        ("https://www.youtube.com/channel/UC38IQsAvIsxxjztdMZQtwHA", "not a video URL"),
        ("https://www.youtube.com/results?search_query=python", "not a video URL"),
        (f"https://www.youtube.com/shorts/{ID}/extra", "not a video URL"),
        (f"https://[www.youtube.com/watch?v={ID}", "not a YouTube URL"),
        (f"{ID} {ID}", "not a YouTube URL"),
    ],
)
def test_rejects_bad_input_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(InvalidVideoInput, match=re.escape(message)):
        parse_video_id(text)


def test_invalid_input_is_also_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_video_id("nope")


def test_read_video_list_dedups_skips_comments_and_collects_errors() -> None:
    lines = [
        "\ufeff# my course\n",
        f"https://youtu.be/{ID}\n",
        "\n",
        "   \n",
        f"{ODD_ID}  # lecture 2\n",
        "https://example.com/watch?v=xxxxxxxxxxx\n",
        f"https://www.youtube.com/watch?v={ID}&t=10s\n",
        f"https://youtu.be/{ID}#t=30\n",  # a fragment is not a comment
        "    # indented comment\n",
        "https://www.youtube.com/playlist?list=PL123\r\n",
    ]
    result = read_video_list(lines)
    assert result.ids == [ID, ODD_ID]
    assert result.duplicates == [(7, ID), (8, ID)]
    assert [(number, raw) for number, raw, _ in result.errors] == [
        (6, "https://example.com/watch?v=xxxxxxxxxxx"),
        (10, "https://www.youtube.com/playlist?list=PL123"),
    ]
    assert "not a YouTube URL" in result.errors[0][2]
    assert "playlist" in result.errors[1][2]


def test_read_video_list_keeps_first_seen_order() -> None:
    ids = ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"]
    result = read_video_list([ids[2], ids[0], ids[2], ids[1]])
    assert result.ids == [ids[2], ids[0], ids[1]]
    assert result.duplicates == [(3, ids[2])]
    assert result.errors == []


def test_read_video_list_of_nothing() -> None:
    result = read_video_list([])
    assert (result.ids, result.duplicates, result.errors) == ([], [], [])


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (None, f"https://www.youtube.com/watch?v={ID}"),
        (0, f"https://www.youtube.com/watch?v={ID}&t=0s"),
        (61.9, f"https://www.youtube.com/watch?v={ID}&t=61s"),
        (3723.0, f"https://www.youtube.com/watch?v={ID}&t=3723s"),
        (-1.0, f"https://www.youtube.com/watch?v={ID}&t=0s"),
    ],
)
def test_watch_url(at: float | None, expected: str) -> None:
    assert watch_url(ID, at) == expected


def test_watch_url_round_trips_through_the_parser() -> None:
    assert parse_video_id(watch_url(ODD_ID, 12)) == ODD_ID
