"""The four designs under test, each a way for W workers to get one fresh-exit session per video.

``before`` is a small emulation of the replaced design (the old ``SingleTorCoordinator``):
each worker takes a shared lock and rotates with NEWNYM before every video. It is built on the
library's ``NewnymStrategy`` through a ``RotatingTorClient``, so it honours tor's 10 s NEWNYM
limit exactly as the library does; it only adds the lock. The other three are the library as is.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from yt_study_buddy import RotatingTorClient, TorIPQueue, TorTranscriptFetcher
from yt_study_buddy.tor._rotation import AUTO
from yt_study_buddy.tor._session import TorSession
from yt_study_buddy.youtube._failures import FetchFailure

#: Takes the next session for a worker (by number).
TakeSession = Callable[[int], TorSession]


@dataclass
class Outcome:
    """What the workers did; times are seconds since the design started."""

    started: float
    first_fetch: float | None = None
    finished: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark_first(self) -> None:
        with self.lock:
            if self.first_fetch is None:
                self.first_fetch = time.monotonic() - self.started

    def done(self) -> None:
        with self.lock:
            self.finished.append(time.monotonic() - self.started)

    def failed(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def fetch_all(videos: Sequence[str], workers: int, take: TakeSession, outcome: Outcome) -> None:
    """W worker threads: take a session, fetch one video on it, close it (its cooldown starts)."""
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    for video in videos:
        work.put(video)

    def worker(number: int) -> None:
        while True:
            try:
                video = work.get_nowait()
            except queue.Empty:
                return
            try:
                session = take(number)
            except Exception as exc:  # the design failed to give an exit: count it, stop this worker
                outcome.failed(f"{video}: no session: {type(exc).__name__}: {exc}")
                return
            outcome.mark_first()
            try:
                TorTranscriptFetcher(session=session).fetch_transcript(video)
                outcome.done()
            except FetchFailure as failure:
                outcome.failed(f"{video}: {failure.kind.value}: {failure.reason}")
            finally:
                session.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def locked_rotation(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """The doc's "before": lock, rotate (NEWNYM), unlock, fetch; rotations serialise."""
    lock = threading.Lock()

    def take(_: int) -> TorSession:
        with lock:
            return client.new_session()

    fetch_all(videos, workers, take, outcome)


def _queued(
    client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome, *, lookahead: int, wait: bool
) -> None:
    exits = TorIPQueue(client, target_size=len(videos), lookahead=lookahead)
    try:
        exits.start(wait=wait)
        fetch_all(videos, workers, lambda n: exits.get_next_connection(n)[1], outcome)
    finally:
        exits.stop()


def preallocated_queue(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """The doc's "after": all N exits allocated (blocking) before any worker starts."""
    _queued(client, videos, workers, outcome, lookahead=len(videos), wait=True)


def streaming_queue(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """Ours: workers start at once; the queue keeps 2W exits ready ahead of them."""
    _queued(client, videos, workers, outcome, lookahead=2 * workers, wait=False)


@dataclass(frozen=True)
class Design:
    """A rotation strategy for the client, how workers get sessions from it, and whether the
    client finds no tor running and launches its own (joined to the lab) as the CLI would."""

    strategy: str
    run: Callable[[RotatingTorClient, Sequence[str], int, Outcome], None]
    label: str
    launch: bool = False


DESIGNS: dict[str, Design] = {
    "before": Design("newnym", locked_rotation, "doc's before: lock + NEWNYM per video"),
    "after": Design("newnym", preallocated_queue, "doc's after: NEWNYM queue, all N first"),
    "default": Design(AUTO, streaming_queue, "ours, as installed: no tor running, so a tor of our own", launch=True),
    "isolate": Design("isolate", streaming_queue, "ours on a shared tor (auto: isolation)"),
    "pin": Design("pin", streaming_queue, "ours on the lab's tor with --rotation pin"),
}
