"""yt-study-buddy: YouTube transcripts as study notes, fetched through Tor, one fresh exit per video.

The public API, importable from the package root::

    from yt_study_buddy import RotatingTorClient, TorIPQueue, TorTranscriptFetcher
"""

from __future__ import annotations

from .batch import BatchOptions, BatchRunner
from .errors import (
    ExitsExhausted,
    InvalidVideoInput,
    LedgerError,
    StudyBuddyError,
    TorAuthError,
    TorError,
    TorUnavailable,
)
from .exit_check import DEFAULT_IP_CHECK_URL, check_exit_ip
from .exit_ledger import ExitLease, ExitLedger, ExitState
from .failures import FailureKind, FetchFailure, classify_failure
from .formatters import FORMATS, Provenance, render
from .rotating_tor_client import RotatingTorClient
from .rotation import IsolateStrategy, NewnymStrategy, PinStrategy, RotationStrategy
from .tor_ip_queue import QueueStopped, TorIPQueue
from .tor_session import ExitInfo, TorSession
from .tor_settings import TorEndpoint
from .tor_transcript_fetcher import SingleTorCoordinator, TorExitNodePool, TorTranscriptFetcher
from .transcripts import Snippet, Transcript, VideoInfo, fetch_transcript, fetch_video_info
from .video_ids import parse_video_id, read_video_list, watch_url

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
