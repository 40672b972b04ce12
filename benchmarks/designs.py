"""The designs under test, each a way for W workers to fetch N videos through one tor.

``before`` is a small emulation of the replaced design (the old ``SingleTorCoordinator``):
each worker takes a shared lock and rotates with NEWNYM before every video. It is built on the
library's ``NewnymStrategy`` through a ``RotatingTorClient``, so it honours tor's 10 s NEWNYM
limit exactly as the library does; it only adds the lock. ``after``, ``default``, ``isolate``
and ``pin`` are the library as is. ``naive`` is what a user of youtube-transcript-api writes
without it: random SOCKS credentials per video, the library's own retries, nothing else.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from youtube_transcript_api import YouTubeTranscriptApi
from youtube_transcript_api.proxies import GenericProxyConfig

from yt_study_buddy import FailureKind, RotatingTorClient, TorEndpoint, TorIPQueue, TorTranscriptFetcher
from yt_study_buddy.tor._rotation import AUTO
from yt_study_buddy.tor._session import TorSession
from yt_study_buddy.youtube._failures import FetchFailure

#: Takes the next session for a worker (by number).
TakeSession = Callable[[int], TorSession]
#: Fetches one video for a worker (by number), raising on failure; ``NoSession`` stops the worker.
FetchOne = Callable[[int, str, "Outcome"], None]
#: Attempts per video, each on a fresh session, as the CLI's ``--max-attempts`` default.
MAX_ATTEMPTS = 3
#: The naive client's per-request timeout (youtube-transcript-api sets none).
NAIVE_TIMEOUT = 30.0
#: The naive client's retries per video: what youtube-transcript-api's rotating-proxy configs do.
NAIVE_RETRIES = 3


class NoSession(Exception):
    """The design could not give a worker an exit: the worker stops."""


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


def fetch_all(videos: Sequence[str], workers: int, fetch: FetchOne, outcome: Outcome) -> None:
    """W worker threads, each fetching one video after the other until none is left."""
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
                fetch(number, video, outcome)
                outcome.done()
            except NoSession as exc:
                outcome.failed(f"{video}: no session: {exc}")
                return
            except FetchFailure as failure:
                outcome.failed(f"{video}: {failure.kind.value}: {failure.reason}")
            except Exception as exc:  # the naive client's failures are youtube-transcript-api's own
                outcome.failed(f"{video}: {type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def on_sessions(take: TakeSession) -> FetchOne:
    """One video on one session from ``take``, closed after (its cooldown starts); a failure a
    retry can help is tried again on a fresh session, as the CLI does (a block quarantines the
    exit when its session closes)."""

    def fetch(number: int, video: str, outcome: Outcome) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                session = take(number)
            except Exception as exc:
                raise NoSession(f"{type(exc).__name__}: {exc}") from exc
            outcome.mark_first()
            try:
                TorTranscriptFetcher(session=session).fetch_transcript(video)
                return
            except FetchFailure as failure:
                if failure.kind is FailureKind.PERMANENT or attempt == MAX_ATTEMPTS:
                    raise
            finally:
                session.close()

    return fetch


def locked_rotation(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """The doc's "before": lock, rotate (NEWNYM), unlock, fetch; rotations serialise."""
    lock = threading.Lock()

    def take(_: int) -> TorSession:
        with lock:
            return client.new_session()

    fetch_all(videos, workers, on_sessions(take), outcome)


def _queued(
    client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome, *, lookahead: int, wait: bool
) -> None:
    exits = TorIPQueue(client, target_size=len(videos), lookahead=lookahead)
    try:
        exits.start(wait=wait)
        fetch_all(videos, workers, on_sessions(lambda n: exits.get_next_connection(n)[1]), outcome)
    finally:
        exits.stop()


def preallocated_queue(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """The doc's "after": all N exits allocated (blocking) before any worker starts."""
    _queued(client, videos, workers, outcome, lookahead=len(videos), wait=True)


def streaming_queue(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """Ours: workers start at once; the queue keeps 2W exits ready ahead of them."""
    _queued(client, videos, workers, outcome, lookahead=2 * workers, wait=False)


class _TimedSession(requests.Session):
    """A plain session whose requests time out (youtube-transcript-api passes no timeout)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", NAIVE_TIMEOUT)
        return super().request(*args, **kwargs)


class _RandomTorCredentials(GenericProxyConfig):
    """Tor as a rotating proxy, the way youtube-transcript-api's docs suggest for one: new
    random SOCKS credentials (a new circuit, an exit tor picks) and retries when blocked. A
    retry keeps the credentials, so it lands on the same exit."""

    def __init__(self, endpoint: TorEndpoint) -> None:
        url = endpoint.socks_url(secrets.token_hex(8), secrets.token_hex(8))
        super().__init__(http_url=url, https_url=url)

    @property
    def prevent_keeping_connections_alive(self) -> bool:
        return True

    @property
    def retries_when_blocked(self) -> int:
        return NAIVE_RETRIES


def naive_client(client: RotatingTorClient, videos: Sequence[str], workers: int, outcome: Outcome) -> None:
    """A naive client on the same tor: no exit check, no cooldown, no quarantine; only the
    client's endpoint and CA are used (the fake's certificate has to be trusted)."""

    def fetch(number: int, video: str, outcome: Outcome) -> None:
        session = _TimedSession()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE would win over ``verify``
        session.verify = client.ca_bundle or True
        outcome.mark_first()
        try:
            YouTubeTranscriptApi(proxy_config=_RandomTorCredentials(client.endpoint), http_client=session).fetch(video)
        finally:
            session.close()

    fetch_all(videos, workers, fetch, outcome)


@dataclass(frozen=True)
class Design:
    """A rotation strategy for the client, how workers get sessions from it, and whether the
    client finds no tor running and launches its own (joined to the lab) as the CLI would."""

    strategy: str
    run: Callable[[RotatingTorClient, Sequence[str], int, Outcome], None]
    label: str
    launch: bool = False
    #: Losing videos is what this design is there to show (the naive client), not a failed run.
    may_lose_videos: bool = False


DESIGNS: dict[str, Design] = {
    "before": Design("newnym", locked_rotation, "doc's before: lock + NEWNYM per video"),
    "after": Design("newnym", preallocated_queue, "doc's after: NEWNYM queue, all N first"),
    "default": Design(AUTO, streaming_queue, "ours, as installed: no tor running, so a tor of our own", launch=True),
    "isolate": Design("isolate", streaming_queue, "ours on a shared tor (auto: isolation)"),
    "pin": Design("pin", streaming_queue, "ours on the lab's tor with --rotation pin"),
    "naive": Design(
        "isolate", naive_client, "youtube-transcript-api with random SOCKS credentials per video", may_lose_videos=True
    ),
}
