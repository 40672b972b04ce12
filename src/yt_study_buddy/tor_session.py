"""A ``requests.Session`` that can only leave through one Tor SOCKS identity, with timeouts."""

from __future__ import annotations

import functools
import logging
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import certifi
import requests
from requests.adapters import HTTPAdapter

from .errors import TorError
from .tor_settings import TorEndpoint

log = logging.getLogger(__name__)

#: (connect, read) seconds. Connect covers the SOCKS handshake, i.e. tor building a circuit.
DEFAULT_TIMEOUT: tuple[float, float] = (20.0, 30.0)


class TorOnlyAdapter(HTTPAdapter):
    """Refuses any request that would not go through a ``socks5h`` proxy, and sets timeouts.

    youtube-transcript-api passes no timeout, and ``requests`` takes per-call ``proxies`` over
    the session's: this is the one place both are enforced, so nothing leaves outside Tor and
    nothing waits forever.
    """

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        proxies = kwargs.get("proxies") or {}
        scheme = (request.url or "").split(":", 1)[0].lower()
        proxy = proxies.get(scheme) or proxies.get("all")
        if not proxy or not proxy.startswith("socks5h://"):
            raise TorError(f"refusing a {scheme} request that would not go through Tor (socks5h)")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


@functools.cache
def trust_bundle(extra_ca: str) -> str:
    """A PEM file with the usual public CAs plus ``extra_ca`` (``requests`` takes one path)."""
    combined = Path(certifi.where()).read_text() + "\n" + Path(extra_ca).read_text()
    handle = tempfile.NamedTemporaryFile("w", prefix="ytsb-ca-", suffix=".pem", delete=False)
    with handle:
        handle.write(combined)
    return handle.name


@dataclass(frozen=True)
class ExitInfo:
    """The exit a session was checked on: its IP (as the echo saw it) and relay."""

    ip: str
    fingerprint: str | None
    circuit_id: str | None
    verified_at: datetime


class SessionOwner(Protocol):
    """Who handed the session out: told when it ends, and asked which exits it really used."""

    def finish_session(self, session: TorSession) -> None: ...

    def exits_used(self, session: TorSession) -> list[str]: ...


class TorSession(requests.Session):
    """A session bound to its own SOCKS credentials, so tor keeps it on its own circuit.

    ``IsolateSOCKSAuth`` (on by default) gives each distinct username its own circuit; keep-alive
    keeps the requests to one host on one stream. ``close()`` ends the session's use of its exit:
    the cooldown of that exit starts then.
    """

    def __init__(
        self,
        endpoint: TorEndpoint,
        *,
        username: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
    ) -> None:
        super().__init__()
        self.trust_env = False  # HTTPS_PROXY & co. would override our proxies
        self.socks_username = username
        proxy = endpoint.socks_url(username, secrets.token_hex(8))
        self.proxies = {"http": proxy, "https": proxy}
        if ca_bundle:
            self.verify = trust_bundle(ca_bundle)
        adapter = TorOnlyAdapter(timeout)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.exit: ExitInfo | None = None
        #: What the session was used for, for the exit ledger (set by the caller).
        self.video_id: str | None = None
        self.outcome = "ok"
        self._owner: SessionOwner | None = None

    @property
    def exit_ip(self) -> str | None:
        return self.exit.ip if self.exit else None

    def bind(self, exit_info: ExitInfo, owner: SessionOwner) -> None:
        self.exit = exit_info
        self._owner = owner

    def mark_blocked(self, reason: str) -> None:
        """YouTube blocked this exit: it is quarantined when the session closes."""
        self.outcome = f"blocked:{reason}"

    def exits_used(self) -> list[str]:
        """Every exit IP this session's streams actually left from, as tor reports them."""
        return self._owner.exits_used(self) if self._owner else []

    def drop_connections(self) -> None:
        """Close pooled connections so the next request opens a new stream (and circuit)."""
        for adapter in self.adapters.values():
            adapter.close()

    def close(self) -> None:
        owner, self._owner = self._owner, None
        try:
            if owner is not None:
                owner.finish_session(self)
        finally:
            super().close()
