"""A ``requests.Session`` that can only leave through one Tor SOCKS identity, with timeouts."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
import ssl
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import certifi
import requests
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, BaseAdapter, HTTPAdapter
from requests.utils import get_auth_from_url, select_proxy
from urllib3.contrib.socks import (
    SOCKSConnection,
    SOCKSHTTPConnectionPool,
    SOCKSHTTPSConnection,
    SOCKSHTTPSConnectionPool,
    SOCKSProxyManager,
)
from urllib3.exceptions import LocationParseError, NewConnectionError
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context

from .._exceptions import TorError
from .._fs import write_atomic
from .._settings import cache_dir
from ._endpoint import TorEndpoint

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs  # types-requests' names only

log = logging.getLogger(__name__)

#: (connect, read) seconds. Connect covers the SOCKS handshake, i.e. tor building a circuit.
DEFAULT_TIMEOUT: tuple[float, float] = (20.0, 30.0)
#: New connections tor put on another circuit than the checked one are retried this often.
MOVED_STREAM_RETRIES = 3

#: Given the local port of a new connection through tor, whether it may carry data.
StreamVerifier = Callable[[int], bool]


class _VerifiedStream:
    """Mixin for urllib3's SOCKS connections: a new connection carries no byte until its
    stream is confirmed to leave through the session's checked exit.

    With conflux (tor's default) a later connection of the same SOCKS username can land on
    another circuit, and so another exit, than the one the exit check saw. The session's
    verifier rides in the pool's SOCKS options, next to the username it belongs to.
    """

    def _new_conn(self):  # type: ignore[no-untyped-def]
        verify: StreamVerifier = self._socks_options["stream_verifier"]  # type: ignore[attr-defined]
        for _ in range(MOVED_STREAM_RETRIES):
            sock = super()._new_conn()  # type: ignore[misc]
            try:
                verified = verify(sock.getsockname()[1])
            except BaseException:
                sock.close()
                raise
            if verified:
                return sock
            sock.close()
        raise NewConnectionError(self, "tor kept opening this connection on another exit than the checked one")  # type: ignore[arg-type]


class _VerifiedSOCKSConnection(_VerifiedStream, SOCKSConnection):
    pass


class _VerifiedSOCKSHTTPSConnection(_VerifiedStream, SOCKSHTTPSConnection):
    pass


class _VerifiedSOCKSHTTPConnectionPool(SOCKSHTTPConnectionPool):
    ConnectionCls = _VerifiedSOCKSConnection


class _VerifiedSOCKSHTTPSConnectionPool(SOCKSHTTPSConnectionPool):
    ConnectionCls = _VerifiedSOCKSHTTPSConnection


_VERIFIED_POOLS = {"http": _VerifiedSOCKSHTTPConnectionPool, "https": _VerifiedSOCKSHTTPSConnectionPool}


def _proxy_identity(proxy: str) -> tuple[str | None, str | None, str | None, int | None]:
    """What a proxy URL makes urllib3 connect to and say: scheme, credentials, host, port."""
    try:
        parsed = parse_url(proxy)
    except LocationParseError:
        return None, None, None, None
    return parsed.scheme, parsed.auth, parsed.host, parsed.port


class TorOnlyAdapter(HTTPAdapter):
    """Sends only through its session's own tor SOCKS endpoint and credentials, with timeouts.

    youtube-transcript-api passes no timeout, and ``requests`` takes per-call ``proxies`` (and
    ``scheme://host`` keys) over the session's: this is the one place both are enforced, so
    nothing waits forever and nothing leaves through any other proxy, not even another
    ``socks5h`` one. Other credentials on the same tor are refused too: tor would give them
    another circuit, whose exit nobody checked.
    """

    def __init__(self, timeout: tuple[float, float], verifier: StreamVerifier, proxy: str) -> None:
        self._timeout = timeout
        self._verifier = verifier
        self._own = _proxy_identity(proxy)
        # HTTPAdapter's pool settings, kept for the SOCKS managers made in proxy_manager_for.
        self._pools = (DEFAULT_POOLSIZE, DEFAULT_POOLSIZE, DEFAULT_POOLBLOCK)
        super().__init__(*self._pools)

    def _require_own(self, proxy: str | None, scheme: str) -> None:
        """Raise ``TorError`` unless ``proxy`` is exactly this adapter's tor; says why, no secret."""
        if not proxy:
            why = "no proxy"
        else:
            kind, auth, host, port = _proxy_identity(proxy)
            _, own_auth, own_host, own_port = self._own
            if kind != "socks5h":
                why = f"proxy scheme {kind or 'unknown'}, not socks5h"
            elif (host, port) != (own_host, own_port):
                why = f"proxy {host}:{port}, not this session's tor at {own_host}:{own_port}"
            elif auth != own_auth:
                why = "other SOCKS credentials than this session's: another circuit, an unchecked exit"
            else:
                return
        raise TorError(f"refusing a {scheme} request that would not go through Tor ({why})")

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """urllib3's own SOCKS manager, built here: ``requests`` looks its class up in a module
        global that other libraries replace (importing yt-dlp swaps in its own, whose options
        our verified connections cannot read)."""
        self._require_own(proxy, "proxied")  # send() checked already; this guards every other way in
        if proxy not in self.proxy_manager:
            username, password = get_auth_from_url(proxy)
            self.proxy_manager[proxy] = SOCKSProxyManager(
                proxy,
                username=username,
                password=password,
                num_pools=self._pools[0],
                maxsize=self._pools[1],
                block=self._pools[2],
                **proxy_kwargs,
            )
        manager = self.proxy_manager[proxy]
        manager.pool_classes_by_scheme = _VERIFIED_POOLS
        manager.connection_pool_kw["_socks_options"]["stream_verifier"] = self._verifier
        return manager

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        """Pools verify with the process's one TLS context for the session's trust bundle."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        bundle = verify if isinstance(verify, str) else certifi.where() if verify else None
        if host_params["scheme"] == "https" and bundle is not None and not os.path.isdir(bundle):
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs["ssl_context"] = tls_context(bundle)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str | None, cert: Any) -> None:
        """As ``requests`` does, but a pool with the shared context must not load the bundle
        into it again for every connection (urllib3 would, given ``ca_certs``)."""
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if getattr(conn, "conn_kw", {}).get("ssl_context") is not None:
            conn.ca_certs = conn.ca_cert_dir = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        # The very choice HTTPAdapter makes next: "https://host" keys win over "https".
        self._require_own(select_proxy(url, kwargs.get("proxies")), url.split(":", 1)[0].lower())
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


@functools.cache
def tls_context(ca_file: str) -> ssl.SSLContext:
    """One verifying TLS context per trust bundle, shared by every session of the process.

    Left to itself urllib3 makes a context and loads the bundle (certifi's ~150 CAs) for each
    new connection: every exit check and every video. That churn of C heap, which glibc keeps,
    was most of the memory a long run grew by (tracemalloc saw no Python growth). Sharing is
    safe: an ``SSLContext`` may be used from several threads, and Python resumes a TLS session
    only when handed one (``session=``), so no session ticket links connections on two exits.
    """
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_verify_locations(cafile=ca_file)
    return context


@functools.cache
def trust_bundle(extra_ca: str) -> str:
    """A PEM file with the usual public CAs plus ``extra_ca`` (``requests`` takes one path).

    Kept in the user cache dir under a name derived from its content, so runs reuse one file
    instead of leaving a temporary one behind each time.
    """
    combined = Path(certifi.where()).read_text() + "\n" + Path(extra_ca).read_text()
    digest = hashlib.sha256(combined.encode()).hexdigest()[:16]
    path = cache_dir() / f"ca-bundle-{digest}.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, combined)
    return str(path)


class SessionOutcome(StrEnum):
    """How a session's use of its exit ended. The exit ledger stores the value, followed by
    the caller's reason if it gave one (``"blocked:ip_blocked"``)."""

    #: Used as meant: the exit cools down.
    OK = "ok"
    #: Never used: the exit is free again at once, with no cooldown and no history.
    CANCELLED = "cancelled"
    #: The far end refuses this exit: it is quarantined, not just cooled down.
    BLOCKED = "blocked"
    #: Used, and failed in a way another exit may not: the exit cools down.
    RETRYABLE = "retryable"
    #: Used, and failed for a reason that has nothing to do with the exit: it cools down.
    PERMANENT = "permanent"
    #: Recorded for an exit a session's streams left from besides its checked one.
    DRIFT = "drift"


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

    def verify_stream(self, session: TorSession, local_port: int) -> bool:
        """Whether a new connection may carry data; before the exit check, whether the exit
        tor chose may be checked at all (``ExitRefused`` if not)."""


class TorSession(requests.Session):
    """A session bound to its own SOCKS credentials, so tor keeps it on its own circuit.

    ``IsolateSOCKSAuth`` (on by default) gives each distinct username its own circuit; keep-alive
    keeps the requests to one host on one stream, and every new connection is verified to leave
    through the checked exit before it is used. ``close()`` ends the session's use of its exit:
    the cooldown of that exit starts then.
    """

    def __init__(
        self,
        endpoint: TorEndpoint,
        *,
        username: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        owner: SessionOwner | None = None,
    ) -> None:
        super().__init__()
        self.trust_env = False  # HTTPS_PROXY & co. would override our proxies
        self.socks_username = username
        proxy = endpoint.socks_url(username, secrets.token_hex(8))
        self.proxies = {"http": proxy, "https": proxy}
        if ca_bundle:
            self.verify = trust_bundle(ca_bundle)
        # The adapter holds the session weakly, so a session is freed when its last user lets
        # go of it, not at the next cyclic GC; a verifier that outlives it refuses (fails closed).
        own_verifier = weakref.WeakMethod(self._verify_stream)

        def verify_stream(local_port: int) -> bool:
            method = own_verifier()
            return method is not None and method(local_port)

        self._adapter = TorOnlyAdapter(timeout, verify_stream, proxy)
        self.mount("https://", self._adapter)
        self.mount("http://", self._adapter)
        self.exit: ExitInfo | None = None
        #: What the session was used for, as the exit ledger records it (set by the caller).
        self.label: str | None = None
        self.outcome = SessionOutcome.OK
        #: The caller's short reason for the outcome, e.g. ``"ip_blocked"``.
        self.outcome_reason: str | None = None
        self._owner = owner

    @property
    def exit_ip(self) -> str | None:
        return self.exit.ip if self.exit else None

    def bind(self, exit_info: ExitInfo, owner: SessionOwner) -> None:
        self.exit = exit_info
        self._owner = owner

    def get_adapter(self, url: str) -> BaseAdapter:
        """Only the session's own adapter sends: a caller (or youtube-transcript-api's
        ``proxy_config`` with retries) mounting a plain ``HTTPAdapter`` must not bypass it."""
        adapter = super().get_adapter(url)
        if adapter is not self._adapter:
            scheme = url.split(":", 1)[0].lower()
            raise TorError(f"refusing a {scheme} request that would not go through Tor (its adapter was replaced)")
        return adapter

    def _verify_stream(self, local_port: int) -> bool:
        owner = self._owner
        return owner is None or owner.verify_stream(self, local_port)

    def end_as(self, outcome: SessionOutcome, reason: str | None = None) -> None:
        """Say how the use went; the ledger records it when the session closes, and a
        ``BLOCKED`` exit is quarantined then."""
        self.outcome, self.outcome_reason = SessionOutcome(outcome), reason

    @property
    def outcome_text(self) -> str:
        """The outcome as the ledger stores it: ``"ok"``, ``"blocked:ip_blocked"``."""
        return f"{self.outcome}:{self.outcome_reason}" if self.outcome_reason else str(self.outcome)

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
