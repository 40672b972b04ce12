"""yt-study-buddy: YouTube transcripts as study notes, fetched through Tor, one fresh exit per video.

The public API, importable from the package root::

    from yt_study_buddy import RotatingTorClient, TorIPQueue, TorTranscriptFetcher
"""

from __future__ import annotations

from .app._batch import BatchOptions, BatchRunner
from ._exceptions import (
    ExitsExhausted,
    InvalidVideoInput,
    LedgerError,
    StudyBuddyError,
    TorAuthError,
    TorError,
    TorUnavailable,
)
from .tor._exit_check import DEFAULT_IP_CHECK_URL, check_exit_ip
from .tor._ledger import ExitLease, ExitLedger, ExitState
from .youtube._failures import FailureKind, FetchFailure, classify_failure
from .notes._formatters import FORMATS, Provenance, render
from .tor._client import RotatingTorClient
from .tor._rotation import IsolateStrategy, NewnymStrategy, PinStrategy, RotationStrategy
from .tor._queue import QueueStopped, TorIPQueue
from .tor._session import ExitInfo, TorSession
from .tor._endpoint import TorEndpoint
from .app._fetcher import SingleTorCoordinator, TorExitNodePool, TorTranscriptFetcher
from .youtube._transcripts import Snippet, Transcript, VideoInfo, fetch_transcript, fetch_video_info
from .youtube._video_ids import parse_video_id, read_video_list, watch_url

__all__ = [
    "DEFAULT_IP_CHECK_URL",
    "FORMATS",
    "BatchOptions",
    "BatchRunner",
    "ExitInfo",
    "ExitLease",
    "ExitLedger",
    "ExitState",
    "ExitsExhausted",
    "FailureKind",
    "FetchFailure",
    "InvalidVideoInput",
    "IsolateStrategy",
    "LedgerError",
    "NewnymStrategy",
    "PinStrategy",
    "Provenance",
    "QueueStopped",
    "RotatingTorClient",
    "RotationStrategy",
    "SingleTorCoordinator",
    "Snippet",
    "StudyBuddyError",
    "TorAuthError",
    "TorEndpoint",
    "TorError",
    "TorExitNodePool",
    "TorIPQueue",
    "TorSession",
    "TorTranscriptFetcher",
    "TorUnavailable",
    "Transcript",
    "VideoInfo",
    "check_exit_ip",
    "classify_failure",
    "fetch_transcript",
    "fetch_video_info",
    "parse_video_id",
    "read_video_list",
    "render",
    "watch_url",
]
