"""A fake YouTube that speaks youtube-transcript-api's protocol over TLS, with scripted blocks."""

from __future__ import annotations

from ._courses import FakeCourse, FakeCourseKind, fake_channel, fake_playlist
from ._pages import FakeTrack, FakeVideo, RecordedVideo, default_video, sample_videos, with_chapters
from ._scripts import Behavior, RateLimit, Script, Step
from ._service import HOSTNAMES, SORRY_OUTCOME, FakeYouTube, LoggedRequest

__all__ = [
    "HOSTNAMES",
    "SORRY_OUTCOME",
    "Behavior",
    "FakeCourse",
    "FakeCourseKind",
    "FakeTrack",
    "FakeVideo",
    "FakeYouTube",
    "LoggedRequest",
    "RateLimit",
    "RecordedVideo",
    "Script",
    "Step",
    "default_video",
    "fake_channel",
    "fake_playlist",
    "sample_videos",
    "with_chapters",
]
