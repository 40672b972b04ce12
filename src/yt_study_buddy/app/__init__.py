"""The application: batches of videos over the Tor and YouTube layers, their run log and
progress, the doctor and the offline demo. The CLI (``yt_study_buddy.cli``) only parses,
wires and reports."""

from __future__ import annotations

from .._exceptions import RunLogError
from ._batch import BatchOptions, BatchRunner
from ._course_notes import CoursePlace
from ._courses import CourseFailure, ExpandedInputs, expand_inputs
from ._fetcher import SingleTorCoordinator, TorExitNodePool, TorTranscriptFetcher
from ._progress import PlainReporter, QuietReporter, Reporter, RichReporter, Summary, make_reporter
from ._run_log import ErrorKind, RunLog, VideoResult, VideoStatus
from ._wiring import ClientSettings, Launch, Run, open_client, open_run

__all__ = [
    "BatchOptions",
    "BatchRunner",
    "ClientSettings",
    "CourseFailure",
    "CoursePlace",
    "ErrorKind",
    "ExpandedInputs",
    "Launch",
    "PlainReporter",
    "QuietReporter",
    "Reporter",
    "RichReporter",
    "Run",
    "RunLog",
    "RunLogError",
    "SingleTorCoordinator",
    "Summary",
    "TorExitNodePool",
    "TorTranscriptFetcher",
    "VideoResult",
    "VideoStatus",
    "expand_inputs",
    "make_reporter",
    "open_client",
    "open_run",
]
