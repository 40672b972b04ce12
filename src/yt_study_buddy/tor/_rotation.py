"""How a fresh circuit is obtained for the next session: three strategies over one tor daemon.

- ``isolate`` (default): a new SOCKS username per session. ``IsolateSOCKSAuth`` (on by default)
  gives it its own circuit at once; no signals, no waiting, fully parallel.
- ``newnym``: the original design's way: ``SIGNAL NEWNYM`` before each session. Tor honours
  one per 10 s (extra ones are deferred and merged, yet answered ``250 OK``), so each signal is
  spaced and confirmed by tor's own ``SIGNAL`` event. Sessions still get their own username:
  without it, parallel sessions would share whatever circuit is newest.
- ``pin``: build a circuit through a chosen exit and attach the session's streams to it
  (``__LeaveStreamsUnattached``). Deterministic, but it takes over stream attachment for the
  whole tor, so use it on a tor launched for this program or dedicated to it; streams of other
  users are handed straight back to tor, and attachment is handed back when the strategy stops.

A strategy never decides whether an exit is acceptable: the client checks every exit.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import stem
from stem import Signal, StreamStatus
from stem.control import EventType
from stem.response.events import SignalEvent, StreamEvent

from .._exceptions import CircuitBuildFailed, ExitsExhausted, TorError
from ._control import BoundedController, close_circuit
from ._stream_monitor import socks_username

log = logging.getLogger(__name__)

#: Tor's MAX_SIGNEWNYM_RATE: NEWNYMs closer together than this are deferred, not refused.
NEWNYM_INTERVAL = 10.0


@dataclass(frozen=True)
class Identity:
    """The SOCKS username a session uses, and what the strategy set up for it."""

    username: str
    circuit_id: str | None = None
    exit_fingerprint: str | None = None
    epoch: int = 0


class RotationStrategy(ABC):
    """Makes fresh identities; the client verifies and accepts or discards them."""

    name: str = ""
    #: Whether identities may be made at once. False when making one moves the circuits of
    #: the others (a NEWNYM does), so the ones made meanwhile would have to be checked again.
    parallel_identities: bool = True

    def attach(self, controller: BoundedController) -> None:
        self._controller = controller

    @abstractmethod
    def next_identity(self, username: str, *, avoid: Collection[str], timeout: float) -> Identity:
        """A new identity for ``username``; ``avoid`` holds exit fingerprints not to pick."""

    def is_stale(self, identity: Identity) -> bool:
        """True when something since it was made (e.g. a NEWNYM) moved its future streams."""
        return False

    def discard(self, identity: Identity) -> None:
        """Forget the identity and close its circuits; it is never used again."""
        for circuit in self._controller.get_circuits([]):
            if circuit.socks_username == identity.username:
                close_circuit(self._controller, circuit.id)

    def detach(self) -> None:  # noqa: B027 - a hook: only strategies that change tor undo anything
        """Undo what ``attach`` changed in tor."""


class IsolateStrategy(RotationStrategy):
    """A fresh SOCKS username is a fresh circuit: nothing else to do."""

    name = "isolate"

    def next_identity(self, username: str, *, avoid: Collection[str], timeout: float) -> Identity:
        return Identity(username)


class NewnymStrategy(RotationStrategy):
    """One confirmed NEWNYM per identity, never faster than tor honours them."""

    name = "newnym"
    parallel_identities = False  # every signal moves the circuits of the identities made meanwhile

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rotating = threading.Lock()
        self._epoch = 0
        self._last_honoured = float("-inf")
        self._stopping = threading.Event()
        #: monotonic times at which this strategy sent NEWNYM (for tests and benchmarks)
        self.signals_sent: list[float] = []

    def attach(self, controller: BoundedController) -> None:
        super().attach(controller)
        controller.events.subscribe(EventType.SIGNAL, self._on_signal)

    def _on_signal(self, event: SignalEvent) -> None:
        # Every honoured NEWNYM counts, including other controllers' and deferred ones.
        if event.signal == Signal.NEWNYM:
            with self._cond:
                self._epoch += 1
                self._last_honoured = time.monotonic()
                self._cond.notify_all()

    def next_identity(self, username: str, *, avoid: Collection[str], timeout: float) -> Identity:
        deadline = time.monotonic() + timeout
        with self._rotating:
            wait = self._last_honoured + NEWNYM_INTERVAL - time.monotonic()
            if wait > 0:
                log.debug("waiting %.1f s for tor's NEWNYM rate limit", wait)
                if self._stopping.wait(min(wait, max(0.0, deadline - time.monotonic()))):
                    raise TorError("stopped while waiting to rotate")
            with self._cond:
                target = self._epoch + 1
            self._controller.signal(Signal.NEWNYM)
            self.signals_sent.append(time.monotonic())
            confirm_by = max(deadline, time.monotonic() + NEWNYM_INTERVAL + 2)
            with self._cond:
                while self._epoch < target:
                    remaining = confirm_by - time.monotonic()
                    if remaining <= 0 or self._stopping.is_set():
                        raise TorError("tor did not confirm NEWNYM in time")
                    self._cond.wait(min(remaining, 0.5))
                return Identity(username, epoch=self._epoch)

    def is_stale(self, identity: Identity) -> bool:
        with self._cond:
            return identity.epoch < self._epoch

    def detach(self) -> None:
        self._stopping.set()
        self._controller.events.unsubscribe(self._on_signal)


class PinStrategy(RotationStrategy):
    """Circuits through chosen exits; the session's streams are attached to its circuit."""

    name = "pin"
    _CONSENSUS_TTL = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, str] = {}  # username -> circuit id
        self._exit_of: dict[str, str] = {}  # username -> exit fingerprint
        self._relays: list[Any] = []  # stem router status entries (untyped)
        self._relays_at = float("-inf")
        self._relays_lock = threading.Lock()

    def attach(self, controller: BoundedController) -> None:
        super().attach(controller)
        controller.events.subscribe(EventType.STREAM, self._on_stream)
        controller.set_conf("__LeaveStreamsUnattached", "1")

    def _on_stream(self, event: StreamEvent) -> None:
        if event.status not in (StreamStatus.NEW, StreamStatus.NEWRESOLVE):
            return
        if event.purpose not in (None, "USER"):
            return  # tor's own directory streams are not ours to place
        with self._lock:
            circuit = self._circuits.get(socks_username(event) or "", "0")
        try:
            # Circuit "0" hands the stream back to tor: other users of this tor keep working.
            self._controller.attach_stream(event.id, circuit)
        except stem.ControllerError as exc:
            log.warning("could not attach stream %s to circuit %s: %s", event.id, circuit, exc)

    def _relay_statuses(self) -> list[Any]:
        """The consensus, read at most once per ``_CONSENSUS_TTL`` by one allocator while the
        others wait for it: parsing it is CPU-bound (GIL), so three allocators reading it at
        once at the start (or after it expired) made each wait for all three parses."""
        with self._relays_lock:
            now = time.monotonic()
            if now - self._relays_at > self._CONSENSUS_TTL:
                self._relays = list(self._controller.get_network_statuses([]))
                self._relays_at = now
            return self._relays

    def _claim_exit(self, username: str, avoid: Collection[str]) -> tuple[str, list[str]]:
        """A free exit, claimed for ``username`` before its circuit is built: parallel
        allocators never build two circuits through one exit only for the ledger to refuse one."""
        relays = self._relay_statuses()
        usable = [r for r in relays if "Running" in r.flags and "Valid" in r.flags]
        with self._lock:
            taken = set(avoid) | set(self._exit_of.values())
            exits = [
                r.fingerprint
                for r in usable
                if "Exit" in r.flags and "BadExit" not in r.flags and r.fingerprint not in taken
            ]
            if not exits:
                raise ExitsExhausted("no exit relay in the consensus is free to pin")
            exit_fp = random.choice(exits)
            self._exit_of[username] = exit_fp
        return exit_fp, [r.fingerprint for r in usable if "Guard" in r.flags]

    def next_identity(self, username: str, *, avoid: Collection[str], timeout: float) -> Identity:
        exit_fp, guards = self._claim_exit(username, avoid)
        first_hops = [fp for fp in guards if fp != exit_fp] or [exit_fp]
        entry = random.choice(first_hops)
        middles = [
            r.fingerprint for r in self._relays if r.fingerprint not in (entry, exit_fp) and "Running" in r.flags
        ]
        path = [entry, random.choice(middles), exit_fp] if middles else [entry, exit_fp]
        try:
            circuit = self._controller.new_circuit(path, await_build=True, timeout=timeout)
        except BaseException as exc:
            with self._lock:
                self._exit_of.pop(username, None)  # the exit is free again
            if isinstance(exc, stem.CircuitExtensionFailed):
                raise CircuitBuildFailed(f"could not build a circuit through exit {exit_fp}: {exc}", exit_fp) from None
            if isinstance(exc, stem.Timeout):
                raise TorError(f"no circuit through exit {exit_fp} within {timeout:.0f} s") from None
            raise
        with self._lock:
            self._circuits[username] = circuit
        return Identity(username, circuit_id=circuit, exit_fingerprint=exit_fp)

    def discard(self, identity: Identity) -> None:
        with self._lock:
            self._circuits.pop(identity.username, None)
            self._exit_of.pop(identity.username, None)
        if identity.circuit_id:
            close_circuit(self._controller, identity.circuit_id)

    def detach(self) -> None:
        try:
            self._controller.set_conf("__LeaveStreamsUnattached", "0")
        except Exception as exc:  # tor is gone: nothing is left unattached
            log.debug("handing stream attachment back to tor failed: %s", exc)
        # Only now: a stream opened before tor attaches again must still be handed back.
        self._controller.events.unsubscribe(self._on_stream)


STRATEGIES: dict[str, type[RotationStrategy]] = {
    cls.name: cls for cls in (IsolateStrategy, NewnymStrategy, PinStrategy)
}


#: The default rotation: the best strategy that is safe on the tor at hand (`choose_strategy`).
AUTO = "auto"
#: Every value ``--rotation`` takes.
ROTATIONS = (AUTO, *sorted(STRATEGIES))


def choose_strategy(rotation: str, *, tor_is_ours: bool) -> str:
    """The strategy ``rotation`` names; ``auto`` is ``pin`` on a tor launched for this program
    and ``isolate`` on any other.

    ``pin`` builds each session's circuit through an exit the ledger says is free, so exits are
    reused as soon as they cool down and no circuit is built only to be refused; but it takes
    over stream attachment for the whole tor, which only a tor of our own can afford (it exits
    with us, even on SIGKILL, so nothing is left to repair). On a shared tor ``isolate`` changes
    nothing but conflux (restored on close, repaired by ``doctor --fix``).
    """
    if rotation == AUTO:
        return PinStrategy.name if tor_is_ours else IsolateStrategy.name
    if rotation not in STRATEGIES:
        raise ValueError(f"unknown rotation {rotation!r}; choose one of {', '.join(ROTATIONS)}")
    return rotation


def make_strategy(name: str) -> RotationStrategy:
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(f"unknown rotation strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None
