"""Following tor's STREAM and CIRC events: which circuit, and so which exit, each SOCKS
username's connections really used.

An echo check shows the exit of one connection. With conflux (tor's default) a later connection
of the same username can land on another circuit, so the exits a session actually used are read
from tor itself, here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from stem import CircStatus, StreamStatus
from stem.control import EventType
from stem.response.events import CircuitEvent, StreamEvent

from ._control import BoundedController

log = logging.getLogger(__name__)

#: Paths of this many recent circuits are kept after they close (streams may outlive events).
_PATH_CACHE_SIZE = 4096


@dataclass(frozen=True)
class StreamUse:
    """One stream that tor reported SUCCEEDED: its circuit and the exit relay of that circuit."""

    stream_id: str
    circuit_id: str
    target: str
    exit_fingerprint: str | None
    source_port: int | None = None


def socks_username(event: StreamEvent) -> str | None:
    """stem 1.8.2 does not parse SOCKS_USERNAME on STREAM events; tor sends it quoted."""
    raw = event.keyword_args.get("SOCKS_USERNAME")
    return raw.strip('"') if raw else None


class StreamMonitor:
    """Records the succeeded streams of the SOCKS usernames it is asked to watch.

    Its subscribers run on stem's single event thread (through the controller's dispatcher) and
    only touch dictionaries under a lock; anything slow (asking tor for a circuit path) happens in
    the caller's thread.
    """

    def __init__(self, controller: BoundedController, prefix: str) -> None:
        self._controller = controller
        self._prefix = prefix
        self._cond = threading.Condition()
        self._streams: dict[str, list[StreamUse]] = {}
        self._paths: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._ports: dict[str, int] = {}  # stream id -> local port, from NEW until it ends
        self._by_port: OrderedDict[int, StreamUse] = OrderedDict()

    def start(self) -> None:
        self._controller.events.subscribe(EventType.CIRC, self._on_circuit)
        self._controller.events.subscribe(EventType.STREAM, self._on_stream)

    def stop(self) -> None:
        self._controller.events.unsubscribe(self._on_stream)
        self._controller.events.unsubscribe(self._on_circuit)

    def _on_circuit(self, event: CircuitEvent) -> None:
        if event.status in (CircStatus.BUILT, CircStatus.EXTENDED) and event.path:
            with self._cond:
                self._paths[event.id] = tuple(fingerprint for fingerprint, _ in event.path)
                self._paths.move_to_end(event.id)
                while len(self._paths) > _PATH_CACHE_SIZE:
                    self._paths.popitem(last=False)

    def _on_stream(self, event: StreamEvent) -> None:
        username = socks_username(event)
        if not username or not username.startswith(self._prefix):
            return
        with self._cond:
            if event.status == StreamStatus.NEW and event.source_addr:
                self._ports[event.id] = int(event.source_addr.rsplit(":", 1)[1])
            elif event.status in (StreamStatus.FAILED, StreamStatus.CLOSED):
                self._ports.pop(event.id, None)
            elif event.status == StreamStatus.SUCCEEDED and event.circ_id:
                path = self._paths.get(event.circ_id)
                port = self._ports.get(event.id)
                use = StreamUse(event.id, event.circ_id, event.target, path[-1] if path else None, port)
                self._streams.setdefault(username, []).append(use)
                if port is not None:
                    self._by_port[port] = use
                    while len(self._by_port) > _PATH_CACHE_SIZE:
                        self._by_port.popitem(last=False)
                self._cond.notify_all()

    def wait_for_source(self, port: int, timeout: float) -> StreamUse | None:
        """The stream tor opened for our local connection from ``port``, once it SUCCEEDED."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while port not in self._by_port:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            use = self._by_port.pop(port)
        return self._with_exit(use)

    def wait_for_streams(self, username: str, count: int, timeout: float) -> list[StreamUse]:
        """The username's succeeded streams, waiting (bounded) until at least ``count`` are known.

        Events arrive on stem's thread shortly after the SOCKS reply, so a caller that just
        finished a request may have to wait a moment for its stream to be reported.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._streams.get(username, ())) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            uses = list(self._streams.get(username, ()))
        return [self._with_exit(use) for use in uses]

    def _with_exit(self, use: StreamUse) -> StreamUse:
        if use.exit_fingerprint is not None:
            return use
        circuit = self._controller.get_circuit(use.circuit_id, None)
        fingerprint = circuit.path[-1][0] if circuit is not None and circuit.path else None
        return StreamUse(use.stream_id, use.circuit_id, use.target, fingerprint, use.source_port)

    def discard(self, username: str, use: StreamUse) -> None:
        """Drop a stream we refused to use (closed before it carried a byte)."""
        with self._cond:
            uses = self._streams.get(username, [])
            self._streams[username] = [u for u in uses if u.stream_id != use.stream_id]

    def forget(self, username: str) -> None:
        with self._cond:
            self._streams.pop(username, None)
