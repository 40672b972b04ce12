"""A client for unit tests of the exit queue and the batch runner: no tor, no network.

It hands out ``FakeSession`` objects from a list of exit IPs, raises what it is told to, and
records what the queue asked of it. It satisfies ``SessionSource`` as ``RotatingTorClient`` does.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from yt_study_buddy._exceptions import ExitsExhausted
from yt_study_buddy.tor._rotation import RotationStrategy, make_strategy
from yt_study_buddy.tor._session import SessionOutcome

#: Bound for every wait in these tests: they finish in milliseconds unless something is wrong.
WAIT = 5.0


class FakeSession:
    """What the queue and the runner use of a session: its exit, proxies, outcome and close()."""

    def __init__(self, exit_ip: str) -> None:
        self.exit_ip = exit_ip
        self.proxies = {"https": f"socks5h://fake:fake@127.0.0.1:9/{exit_ip}"}
        self.label: str | None = None
        self.outcome = SessionOutcome.OK
        self.outcome_reason: str | None = None
        self.closed = threading.Event()

    def end_as(self, outcome: SessionOutcome, reason: str | None = None) -> None:
        self.outcome, self.outcome_reason = SessionOutcome(outcome), reason

    def close(self) -> None:
        self.closed.set()

    def exits_used(self) -> list[str]:
        return [self.exit_ip]

    def __repr__(self) -> str:
        return f"FakeSession({self.exit_ip})"


class FakeClient:
    """Sessions on ``exits`` in order; then ``ExitsExhausted`` (free again at ``free_at``).

    ``stale`` exits fail their re-check; ``error`` is raised by ``new_session`` once the exits
    are used up instead of ``ExitsExhausted``; with ``gate``, ``new_session`` waits for it.
    """

    def __init__(
        self,
        exits: Iterable[str],
        *,
        strategy: str = "isolate",
        stale: Iterable[str] = (),
        error: BaseException | None = None,
        free_at: datetime | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self._strategy = make_strategy(strategy)
        self._exits = deque(exits)
        self._stale = set(stale)
        self._lock = threading.Lock()
        self.error = error
        self.free_at = free_at
        self.gate = gate
        self.made: list[FakeSession] = []
        self.revalidated: list[FakeSession] = []
        self.exhausted = 0
        self.calls = 0

    @property
    def strategy(self) -> RotationStrategy:
        return self._strategy

    def add_exits(self, *exits: str) -> None:
        with self._lock:
            self._exits.extend(exits)

    def new_session(self) -> Any:
        with self._lock:
            self.calls += 1
        if self.gate is not None and not self.gate.wait(WAIT):
            raise AssertionError("the test never opened the gate")
        with self._lock:
            if self._exits:
                session = FakeSession(self._exits.popleft())
                self.made.append(session)
                return session
            if self.error is not None:
                raise self.error
            self.exhausted += 1
            raise ExitsExhausted("every exit is cooling down", self.free_at)

    def is_stale(self, session: Any, max_age: float) -> bool:
        return session.exit_ip in self._stale

    def revalidate(self, session: Any) -> bool:
        self.revalidated.append(session)
        session.end_as(SessionOutcome.CANCELLED)
        session.close()
        return False
