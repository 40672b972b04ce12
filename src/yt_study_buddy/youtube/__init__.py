"""The YouTube layer: video ids, transcripts and the classification of failed fetches.

It knows only the ``requests.Session`` it is handed, never how that session reaches YouTube.
"""

from __future__ import annotations

from ._failures import FailureKind, FetchFailure, classify_failure
from ._transcripts import Snippet, Transcript, VideoInfo, fetch_transcript, fetch_video_info
from ._video_ids import VideoList, parse_video_id, read_video_list, watch_url

__all__ = [
    "FailureKind",
    "FetchFailure",
    "Snippet",
    "Transcript",
    "VideoInfo",
    "VideoList",
    "classify_failure",
    "fetch_transcript",
    "fetch_video_info",
    "parse_video_id",
    "read_video_list",
    "watch_url",
]
