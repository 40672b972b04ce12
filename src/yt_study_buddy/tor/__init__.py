"""The Tor layer: sessions that leave through one checked exit each, and the exits' ledger.

It knows nothing about YouTube: it hands out ``requests.Session`` objects bound to a fresh,
unique, cooldown-checked exit, and is told afterwards whether that exit was blocked.
"""

from __future__ import annotations

from .._exceptions import (
    CircuitBuildFailed,
    ExitCheckError,
    ExitRefused,
    ExitsExhausted,
    ExitWaitTimeout,
    LedgerAuthError,
    LedgerError,
    LedgerSchemaError,
    LedgerUnavailable,
    QueueStopped,
    TorAuthError,
    TorChangesError,
    TorError,
    TorUnavailable,
)
from ._client import RotatingTorClient
from ._connect import connect_or_launch
from ._control import BoundedController, open_controller
from ._endpoint import TorEndpoint, parse_host_port
from ._events import EventDispatcher
from ._exit_check import DEFAULT_IP_CHECK_URL, check_exit_ip
from ._launcher import LaunchedTor, launch_tor
from ._ledger import (
    ExitLease,
    ExitLedger,
    ExitState,
    LedgerStore,
    PostgresDsn,
    SqliteStore,
    UseRecord,
    parse_ledger_location,
)
from ._protocols import SessionSource
from ._queue import TorIPQueue
from ._rotation import STRATEGIES, IsolateStrategy, NewnymStrategy, PinStrategy, RotationStrategy
from ._session import ExitInfo, SessionOutcome, TorSession
from ._stream_monitor import StreamMonitor

__all__ = [
    "DEFAULT_IP_CHECK_URL",
    "STRATEGIES",
    "BoundedController",
    "CircuitBuildFailed",
    "EventDispatcher",
    "ExitCheckError",
    "ExitInfo",
    "ExitLease",
    "ExitLedger",
    "ExitRefused",
    "ExitState",
    "ExitWaitTimeout",
    "ExitsExhausted",
    "IsolateStrategy",
    "LaunchedTor",
    "LedgerAuthError",
    "LedgerError",
    "LedgerSchemaError",
    "LedgerStore",
    "LedgerUnavailable",
    "NewnymStrategy",
    "PinStrategy",
    "PostgresDsn",
    "QueueStopped",
    "RotatingTorClient",
    "RotationStrategy",
    "SessionOutcome",
    "SessionSource",
    "SqliteStore",
    "StreamMonitor",
    "TorAuthError",
    "TorChangesError",
    "TorEndpoint",
    "TorError",
    "TorIPQueue",
    "TorSession",
    "TorUnavailable",
    "UseRecord",
    "check_exit_ip",
    "connect_or_launch",
    "launch_tor",
    "open_controller",
    "parse_host_port",
    "parse_ledger_location",
]
