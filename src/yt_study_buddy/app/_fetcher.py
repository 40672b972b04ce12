"""TorTranscriptFetcher: one video's transcript through Tor, and the deprecated coordinators.

With a pre-configured session (from ``TorIPQueue``) the fetcher never rotates: it makes one
attempt on that session's exit and reports the failure class, so the caller can retry a block
on a fresh exit. Without one (legacy mode) it takes sessions from its own ``RotatingTorClient``
and retries blocks and transport failures itself, never permanent errors.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import requests

from .._exceptions import FailureKind, FetchFailure, TorError
from ..tor._client import RotatingTorClient
from ..tor._session import SessionOutcome, TorSession
from ..youtube._transcripts import Transcript, fetch_transcript

log = logging.getLogger(__name__)


def end_on_failure(session: TorSession, failure: FetchFailure) -> None:
    """Tell the exit ledger how the fetch went: a block quarantines the exit when the session
    closes. A fetch's ``FailureKind`` is the session outcome of the same name."""
    session.end_as(SessionOutcome(failure.kind), failure.reason)


def _require_tor_proxies(session: requests.Session, proxies: dict[str, str] | None) -> None:
    """A caller's own session may be used only if it goes through Tor with socks5h."""
    if isinstance(session, TorSession):
        return
    if not proxies or not all(str(proxies.get(s, "")).startswith("socks5h://") for s in ("http", "https")):
        raise TorError("a pre-configured session needs socks5h:// proxies for http and https")
    session.proxies = dict(proxies)
    session.trust_env = False


class TorTranscriptFetcher:
    """Fetches transcripts through Tor; see the module docstring for the two modes."""

    def __init__(
        self,
        session: requests.Session | None = None,
        proxies: dict[str, str] | None = None,
        exit_ip: str | None = None,
        *,
        client: RotatingTorClient | None = None,
        max_attempts: int = 3,
        **client_options: Any,
    ) -> None:
        self.session = session
        self.exit_ip = exit_ip or (session.exit_ip if isinstance(session, TorSession) else None)
        self.max_attempts = max_attempts
        #: Attempts made by the last ``fetch_transcript`` call, and the exits they used.
        self.attempts = 0
        self.exits_tried: list[str] = []
        if session is not None:
            _require_tor_proxies(session, proxies)
            self._client = None
            self._owns_client = False
        else:
            self._client = client or RotatingTorClient(**client_options)
            self._owns_client = client is None

    def fetch_transcript(
        self,
        video_id: str,
        languages: Sequence[str] = ("en",),
        *,
        translate_to: str | None = None,
    ) -> Transcript:
        """The transcript, or ``FetchFailure`` whose ``kind`` says whether a retry can help."""
        self.attempts = 0
        self.exits_tried = []
        if self.session is not None:
            return self._attempt(self.session, video_id, languages, translate_to)
        assert self._client is not None
        while True:
            with self._client.session() as session:
                self.exit_ip = session.exit_ip
                try:
                    return self._attempt(session, video_id, languages, translate_to)
                except FetchFailure as failure:
                    if failure.kind is FailureKind.PERMANENT or self.attempts >= self.max_attempts:
                        raise
                    log.info("%s on exit %s (%s); retrying on a fresh exit", video_id, session.exit_ip, failure.reason)

    def _attempt(
        self, session: requests.Session, video_id: str, languages: Sequence[str], translate_to: str | None
    ) -> Transcript:
        self.attempts += 1
        if isinstance(session, TorSession):
            session.label = video_id
            if session.exit_ip:
                self.exits_tried.append(session.exit_ip)
        try:
            return fetch_transcript(session, video_id, languages=languages, translate_to=translate_to)
        except FetchFailure as failure:
            if isinstance(session, TorSession):
                end_on_failure(session, failure)
            raise

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()


class SingleTorCoordinator:
    """Deprecated: use ``TorIPQueue`` with ``RotatingTorClient``.

    Kept so old scripts run: ``acquire()`` yields a fetcher on a fresh exit session of the
    shared client; no NEWNYM is serialised.
    """

    def __init__(
        self,
        tor_host: str = "127.0.0.1",
        tor_port: int = 9050,
        tor_control_port: int = 9051,
        tor_control_password: str | None = None,
        cooldown_hours: float = 1.0,
        **client_options: Any,
    ) -> None:
        warnings.warn(
            "SingleTorCoordinator is deprecated; use TorIPQueue with RotatingTorClient",
            DeprecationWarning,
            stacklevel=2,
        )
        self.client = RotatingTorClient(
            cooldown_hours,
            tor_host=tor_host,
            tor_port=tor_port,
            control_port=tor_control_port,
            tor_password=tor_control_password,
            **client_options,
        )

    @contextmanager
    def acquire(self, worker_id: int | str | None = None) -> Iterator[TorTranscriptFetcher]:
        with self.client.session() as session:
            log.debug("worker %s acquired exit %s", worker_id, session.exit_ip)
            yield TorTranscriptFetcher(session=session)

    def get_stats(self) -> dict[str, Any]:
        return {"mode": "single_tor", **self.client.get_status()}

    def close(self) -> None:
        self.client.close()


class TorExitNodePool:
    """Deprecated: use ``TorIPQueue`` with ``RotatingTorClient``.

    At most ``pool_size`` fetchers are out at once, each on its own unique exit of ONE tor
    daemon.
    """

    def __init__(
        self,
        pool_size: int = 5,
        tor_host: str = "127.0.0.1",
        base_socks_port: int = 9050,
        base_control_port: int = 9051,
        tor_control_password: str | None = None,
        cooldown_hours: float = 1.0,
        **client_options: Any,
    ) -> None:
        warnings.warn(
            "TorExitNodePool is deprecated; use TorIPQueue with RotatingTorClient", DeprecationWarning, stacklevel=2
        )
        self.pool_size = pool_size
        self._slots = threading.BoundedSemaphore(pool_size)
        self._in_use: dict[int, TorSession] = {}
        self._lock = threading.Lock()
        self.client = RotatingTorClient(
            cooldown_hours,
            tor_host=tor_host,
            tor_port=base_socks_port,
            control_port=base_control_port,
            tor_password=tor_control_password,
            **client_options,
        )

    def get_connection(self, worker_id: int | str | None = None, timeout: float = 30.0) -> TorTranscriptFetcher:
        if not self._slots.acquire(timeout=timeout):
            raise TimeoutError(f"no pool slot free within {timeout} s")
        try:
            session = self.client.new_session()
        except BaseException:
            self._slots.release()
            raise
        fetcher = TorTranscriptFetcher(session=session)
        with self._lock:
            self._in_use[id(fetcher)] = session
        return fetcher

    def release_connection(self, fetcher: TorTranscriptFetcher) -> None:
        with self._lock:
            session = self._in_use.pop(id(fetcher), None)
        if session is not None:
            session.close()
            self._slots.release()

    @contextmanager
    def acquire(self, worker_id: int | str | None = None, timeout: float = 30.0) -> Iterator[TorTranscriptFetcher]:
        fetcher = self.get_connection(worker_id, timeout)
        try:
            yield fetcher
        finally:
            self.release_connection(fetcher)

    def get_stats(self) -> dict[str, Any]:
        with self._lock:
            active = [s.exit_ip for s in self._in_use.values()]
        return {
            "pool_size": self.pool_size,
            "in_use": len(active),
            "available": self.pool_size - len(active),
            "active_exit_ips": active,
            "all_unique": len(set(active)) == len(active),
        }

    def close(self) -> None:
        self.client.close()
