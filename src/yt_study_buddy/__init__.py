"""yt-study-buddy: YouTube transcripts as study notes, fetched through Tor, one fresh exit per video.

The public API, importable from the package root::

    from yt_study_buddy import RotatingTorClient, TorIPQueue, TorTranscriptFetcher
"""

from __future__ import annotations

from ._exceptions import (
    CircuitBuildFailed,
    ExitCheckError,
    ExitRefused,
    ExitsExhausted,
    ExitWaitTimeout,
    FailureKind,
    FetchFailure,
    InvalidVideoInput,
    LedgerAuthError,
    LedgerError,
    LedgerSchemaError,
    LedgerUnavailable,
    QueueError,
    QueueStopped,
    RunLogError,
    SearchError,
    SearchQueryError,
    StudyBuddyError,
    TorAuthError,
    TorChangesError,
    TorError,
    TorUnavailable,
)
from .app._batch import BatchOptions, BatchRunner
from .app._course_notes import CoursePlace
from .app._fetcher import SingleTorCoordinator, TorExitNodePool, TorTranscriptFetcher
from .app._progress import PlainReporter, QuietReporter, Reporter, RichReporter, Summary, make_reporter
from .app._run_log import ErrorKind, RunLog, VideoResult, VideoStatus
from .app._wiring import ClientSettings, Launch, Run, open_client, open_run
from .notes._formatters import FORMATS, CourseContext, Provenance, render
from .notes._search import NoteIndex, SearchHit
from .tor._client import RotatingTorClient
from .tor._endpoint import TorEndpoint
from .tor._exit_check import DEFAULT_IP_CHECK_URL, check_exit_ip
from .tor._ledger import ExitLease, ExitLedger, ExitState, LedgerStore, PostgresDsn
from .tor._protocols import SessionSource
from .tor._queue import TorIPQueue
from .tor._rotation import IsolateStrategy, NewnymStrategy, PinStrategy, RotationStrategy
from .tor._session import ExitInfo, SessionOutcome, TorSession
from .youtube._chapters import Chapter
from .youtube._courses import Course
from .youtube._failures import classify_failure
from .youtube._transcripts import Snippet, Transcript, VideoInfo, fetch_transcript, fetch_video_info
from .youtube._video_ids import parse_video_id, read_video_list, watch_url

__all__ = [
    "DEFAULT_IP_CHECK_URL",
    "FORMATS",
    "BatchOptions",
    "BatchRunner",
    "Chapter",
    "CircuitBuildFailed",
    "ClientSettings",
    "Course",
    "CourseContext",
    "CoursePlace",
    "ErrorKind",
    "ExitCheckError",
    "ExitInfo",
    "ExitLease",
    "ExitLedger",
    "ExitRefused",
    "ExitState",
    "ExitWaitTimeout",
    "ExitsExhausted",
    "FailureKind",
    "FetchFailure",
    "InvalidVideoInput",
    "IsolateStrategy",
    "Launch",
    "LedgerAuthError",
    "LedgerError",
    "LedgerSchemaError",
    "LedgerStore",
    "LedgerUnavailable",
    "NewnymStrategy",
    "NoteIndex",
    "PinStrategy",
    "PlainReporter",
    "PostgresDsn",
    "Provenance",
    "QueueError",
    "QueueStopped",
    "QuietReporter",
    "Reporter",
    "RichReporter",
    "RotatingTorClient",
    "RotationStrategy",
    "Run",
    "RunLog",
    "RunLogError",
    "SearchError",
    "SearchHit",
    "SearchQueryError",
    "SessionOutcome",
    "SessionSource",
    "SingleTorCoordinator",
    "Snippet",
    "StudyBuddyError",
    "Summary",
    "TorAuthError",
    "TorChangesError",
    "TorEndpoint",
    "TorError",
    "TorExitNodePool",
    "TorIPQueue",
    "TorSession",
    "TorTranscriptFetcher",
    "TorUnavailable",
    "Transcript",
    "VideoInfo",
    "VideoResult",
    "VideoStatus",
    "check_exit_ip",
    "classify_failure",
    "fetch_transcript",
    "fetch_video_info",
    "make_reporter",
    "open_client",
    "open_run",
    "parse_video_id",
    "read_video_list",
    "render",
    "watch_url",
]
