"""TorIPQueue: fresh exits made ahead of the workers that use them.

One background thread asks the client (a ``SessionSource``: the ``RotatingTorClient``) for
sessions and keeps a bounded lookahead of them ready; workers take one per video and never wait
on rotation while one is ready. The lookahead is bounded (not all N up front) because tor moves
a username to a new circuit once its circuit is older than MaxCircuitDirtiness (10 minutes): a
session made long before use could silently leave from an exit nobody checked. Sessions that
waited too long are checked again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

from .._exceptions import ExitsExhausted, ExitWaitTimeout, QueueStopped
from ._protocols import SessionSource
from ._session import SessionOutcome, TorSession

log = logging.getLogger(__name__)

#: Re-check sessions older than this before use: half of tor's default MaxCircuitDirtiness.
DEFAULT_MAX_SESSION_AGE = 300.0
#: Sessions kept ready by default: the design document's 9 videos are all ready after start().
DEFAULT_LOOKAHEAD = 10
#: Exit checks run at once. With isolation tor picks the exit, so when few exits are free most
#: checks are refused; running several at once finds a free one sooner.
DEFAULT_ALLOCATORS = 3
_POLL = 0.5


class TorIPQueue:
    """Hands out ``target_size`` sessions in all, each on its own unique, checked exit.

    ``start()`` blocks until ``min(target_size, lookahead)`` are ready (``start(wait=False)``
    returns at once); ``get_next_connection()`` returns ``(exit_ip, session, proxies)``. When no
    exit is free, ``on_exhausted="wait"`` waits (bounded by ``max_exhausted_wait``) for the
    first one to cool down, and ``"fail"`` hands the ``ExitsExhausted`` error to the workers.
    ``allocators`` threads make sessions (3 by default; 1 when the strategy cannot make
    identities in parallel: NEWNYM's every signal would move the sessions the others just made).
    """

    def __init__(
        self,
        client: SessionSource,
        target_size: int,
        *,
        lookahead: int = DEFAULT_LOOKAHEAD,
        max_session_age: float = DEFAULT_MAX_SESSION_AGE,
        on_exhausted: Literal["wait", "fail"] = "wait",
        max_exhausted_wait: float = 3600.0,
        queue_timeout: float | None = None,
        allocators: int | None = None,
    ) -> None:
        if target_size < 0 or lookahead < 1:
            raise ValueError("target_size must be >= 0 and lookahead >= 1")
        self.client = client
        self.lookahead = lookahead
        self.max_session_age = max_session_age
        self.on_exhausted = on_exhausted
        self.max_exhausted_wait = max_exhausted_wait
        self.queue_timeout = queue_timeout
        self._cond = threading.Condition()
        self._ready: deque[TorSession] = deque()
        self._target = target_size
        self._made = 0  # sessions made and not discarded (ready + handed out)
        self._handed_out = 0
        self._failed_attempts = 0
        self._error: BaseException | None = None
        self._stopping = False
        self._waiting_until: datetime | None = None
        self._in_flight = 0  # sessions being made right now
        self._announced = False
        if allocators is None:
            allocators = DEFAULT_ALLOCATORS if client.strategy.parallel_identities else 1
        self._threads = [
            threading.Thread(target=self._allocate, name=f"tor-ip-queue-{n}", daemon=True)
            for n in range(1, max(1, allocators) + 1)
        ]
        self._started = False

    # -- producer ----------------------------------------------------------------------------

    def _wanted(self) -> bool:
        pending = self._made + self._in_flight
        return pending < self._target and len(self._ready) + self._in_flight < self.lookahead

    def _allocate(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and self._error is None and not self._wanted():
                    self._cond.wait(_POLL)
                if self._stopping or self._error is not None:
                    return
                self._in_flight += 1
            try:
                session = self.client.new_session()
            except ExitsExhausted as exc:
                self._done_in_flight()
                if not self._wait_for_exit(exc):
                    return
                continue
            except Exception as exc:  # tor unusable: every worker must hear it, not hang
                self._done_in_flight()
                log.error("exit allocation stopped: %s", exc)
                with self._cond:
                    self._error = self._error or exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._in_flight -= 1
                if self._stopping:
                    session.end_as(SessionOutcome.CANCELLED)
                    session.close()
                    return
                self._ready.append(session)
                self._made += 1
                made = self._made
                announce = made >= self._target and not self._announced
                self._announced |= announce  # retries may raise the target later; say it once
                self._cond.notify_all()
            log.debug("exit %d/%d ready: %s", made, self._target, session.exit_ip)
            if announce:
                log.info("✓ All %d unique IPs pre-allocated!", made)

    def _done_in_flight(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _wait_for_exit(self, exc: ExitsExhausted) -> bool:
        """Sleep until the first exit cools down (or fail, as configured). False: stop."""
        with self._cond:
            self._failed_attempts += 1
            now = datetime.now(UTC)
            wait = (exc.retry_at - now).total_seconds() if exc.retry_at else 30.0
            if self.on_exhausted == "fail" or wait > self.max_exhausted_wait:
                self._error = exc
                self._cond.notify_all()
                return False
            if self._waiting_until is None:
                log.warning("%s; waiting %.0f s", exc, max(wait, 0))
            self._waiting_until = exc.earliest_free_at
            deadline = time.monotonic() + max(wait, 0.05)
            while not self._stopping and time.monotonic() < deadline:
                self._cond.wait(min(_POLL, deadline - time.monotonic()))
            self._waiting_until = None
            return not self._stopping

    # -- consumers ---------------------------------------------------------------------------

    def start(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start allocating; with ``wait``, block until the first sessions are ready."""
        self._started = True
        log.info("PRE-ALLOCATING %d UNIQUE TOR EXIT IPs (lookahead %d)", self._target, self.lookahead)
        for thread in self._threads:
            thread.start()
        if not wait:
            log.info("workers start while exits are still being allocated")
            return
        wanted = min(self._target, self.lookahead)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._ready) < wanted and self._made < self._target:
                if self._error is not None:
                    raise self._error
                if self._stopping:
                    raise QueueStopped("queue stopped")
                if deadline is not None and time.monotonic() >= deadline:
                    raise ExitWaitTimeout(f"only {len(self._ready)} of {wanted} exits ready after {timeout} s")
                self._cond.wait(_POLL)

    def get_next_connection(
        self, worker_id: int | str | None = None, timeout: float | None = None
    ) -> tuple[str, TorSession, dict[str, str]]:
        """Take the next ready session: ``(exit_ip, session, proxies)``.

        The caller owns the session and must ``close()`` it when its video is done (that
        starts the exit's cooldown). Raises the allocator's error if it failed, ``QueueStopped``
        after ``stop()``, ``ExitWaitTimeout`` (a ``TimeoutError``) after ``timeout`` seconds.
        """
        timeout = self.queue_timeout if timeout is None else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                while not self._ready:
                    if self._error is not None:
                        raise self._error
                    if self._stopping:
                        raise QueueStopped("queue stopped")
                    if self._handed_out >= self._target:
                        raise QueueStopped(f"all {self._target} sessions were handed out")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise ExitWaitTimeout(f"no exit ready within {timeout} s")
                    self._cond.wait(_POLL if remaining is None else min(_POLL, remaining))
                session = self._ready.popleft()
                self._cond.notify_all()
            if self.client.is_stale(session, self.max_session_age) and not self.client.revalidate(session):
                with self._cond:
                    self._made -= 1  # make a replacement
                    self._cond.notify_all()
                continue
            with self._cond:
                self._handed_out += 1
            log.debug("worker %s takes exit %s", worker_id, session.exit_ip)
            return session.exit_ip or "", session, dict(session.proxies)

    def add_target(self, count: int = 1) -> None:
        """Ask for ``count`` more sessions than planned, e.g. to retry a video on a fresh exit."""
        with self._cond:
            self._target += count
            self._cond.notify_all()

    def get_stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "target_size": self._target,
                "allocated": self._made,
                "handed_out": self._handed_out,
                "failed_attempts": self._failed_attempts,
                "queue_size": len(self._ready),
                "allocation_complete": self._made >= self._target,
                "waiting_until": self._waiting_until,
                "allocators_running": sum(thread.is_alive() for thread in self._threads),
            }

    def stop(self, timeout: float = 30.0) -> None:
        """Stop allocating, wake every waiting worker, and end the sessions nobody took."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("an allocator is still finishing an exit check; it ends with its timeout")
        with self._cond:
            leftover = list(self._ready)
            self._ready.clear()
        for session in leftover:
            session.end_as(SessionOutcome.CANCELLED)
            session.close()

    def __enter__(self) -> TorIPQueue:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
