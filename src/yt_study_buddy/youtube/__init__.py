"""The YouTube layer: video ids, courses (playlists, channels), transcripts and the
classification of failed fetches.

It knows only the ``requests.Session`` it is handed, never how that session reaches YouTube.
"""

from __future__ import annotations

from .._exceptions import FailureKind, FetchFailure, InvalidVideoInput
from ._chapters import Chapter, extract_chapters
from ._courses import Course, CourseEntry, CourseKind, CourseRef, check_playlist_items, expand_course
from ._failures import classify_failure
from ._transcripts import Snippet, Transcript, VideoInfo, fetch_transcript, fetch_video_info
from ._video_ids import VideoList, parse_input, parse_video_id, read_video_list, watch_url

__all__ = [
    "Chapter",
    "Course",
    "CourseEntry",
    "CourseKind",
    "CourseRef",
    "FailureKind",
    "FetchFailure",
    "InvalidVideoInput",
    "Snippet",
    "Transcript",
    "VideoInfo",
    "VideoList",
    "check_playlist_items",
    "classify_failure",
    "expand_course",
    "extract_chapters",
    "fetch_transcript",
    "fetch_video_info",
    "parse_input",
    "parse_video_id",
    "read_video_list",
    "watch_url",
]
