"""The Tor layer: sessions that leave through one checked exit each, and the exits' ledger.

It knows nothing about YouTube: it hands out ``requests.Session`` objects bound to a fresh,
unique, cooldown-checked exit, and is told afterwards whether that exit was blocked.
"""

from __future__ import annotations

from ._client import RotatingTorClient
from ._control import BoundedController, open_controller
from ._endpoint import TorEndpoint, parse_host_port
from ._exit_check import DEFAULT_IP_CHECK_URL, ExitCheckError, check_exit_ip
from ._launcher import LaunchedTor, launch_tor
from ._ledger import ExitLease, ExitLedger, ExitState, UseRecord
from ._queue import QueueStopped, TorIPQueue
from ._rotation import STRATEGIES, IsolateStrategy, NewnymStrategy, PinStrategy, RotationStrategy
from ._session import ExitInfo, TorSession
from ._stream_monitor import StreamMonitor

__all__ = [
    "DEFAULT_IP_CHECK_URL",
    "STRATEGIES",
    "BoundedController",
    "ExitCheckError",
    "ExitInfo",
    "ExitLease",
    "ExitLedger",
    "ExitState",
    "IsolateStrategy",
    "LaunchedTor",
    "NewnymStrategy",
    "PinStrategy",
    "QueueStopped",
    "RotatingTorClient",
    "RotationStrategy",
    "StreamMonitor",
    "TorEndpoint",
    "TorIPQueue",
    "TorSession",
    "UseRecord",
    "check_exit_ip",
    "launch_tor",
    "open_controller",
    "parse_host_port",
]
