"""RotatingTorClient: the single source of truth for getting a fresh, unique, checked exit.

Every session it hands out has its own SOCKS identity (so its own circuit), an exit IP read
from an echo service through that very circuit, and a lease on that exit in the exit ledger,
so no other session, thread or process uses the exit until it has cooled down.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import stem

from .._exceptions import (
    CircuitBuildFailed,
    ExitRefused,
    ExitsExhausted,
    TorChangesError,
    TorError,
    TorUnavailable,
)
from .._settings import DEFAULT_CONTROL_PORT, DEFAULT_SOCKS_PORT, DEFAULT_TOR_HOST
from ._changes import Change, TorChanges, identify
from ._control import close_circuit, open_controller, probe_socks_port
from ._endpoint import TorEndpoint
from ._exit_check import DEFAULT_IP_CHECK_URL, check_exit_ip
from ._ledger import ExitLease, ExitLedger, PostgresDsn
from ._rotation import Identity, RotationStrategy, make_strategy
from ._session import DEFAULT_TIMEOUT, ExitInfo, SessionOutcome, TorSession
from ._stream_monitor import StreamMonitor

log = logging.getLogger(__name__)

#: Wait this long for tor to report a session's stream after its request returned.
STREAM_REPORT_TIMEOUT = 3.0
#: Consecutive transport failures after which tor itself, not one circuit, is to blame.
TRANSPORT_FAILURE_LIMIT = 4
#: Consecutive failed builds of circuits through chosen exits after which tor is to blame. More
#: than for exit checks: tor's build timeout closes about the slowest fifth of builds on a real
#: network (more on a busy machine), and each failure moves on to another exit.
BUILD_FAILURE_LIMIT = 2 * TRANSPORT_FAILURE_LIMIT
#: Seconds to pause after the first failed build in a row, doubling up to ``BUILD_MAX_PAUSE``:
#: builds that time out together mean a busy tor or machine (tor's build timeout is learned
#: from recent builds), and tor raises that timeout when most recent builds time out. So a
#: tor is called unusable only after about 20 s of failing builds, not a moment's spike.
BUILD_PAUSE = 0.5
BUILD_MAX_PAUSE = 4.0
#: Seconds before trying again when free exits exist but tor picked none of them.
UNPICKED_RETRY = 5.0
#: A session may be prepared on an exit (circuit built, exit checked) this many seconds before
#: its cooldown ends, so it is ready when the exit frees up; the lease is taken only then.
PREPARE_AHEAD = 1.0


@dataclass
class FailureCount:
    """One round's failures in a row, to tell a bad circuit or exit from an unusable tor.

    An exit check that tor carried no connection for counts against tor at once; a circuit that
    could not be built through a chosen exit counts against that exit first (it is avoided for
    the rest of the round while other exits are free), and against tor only after
    ``BUILD_FAILURE_LIMIT`` of them in a row, with growing pauses between them.
    """

    checks: int = 0
    builds: int = 0
    failed_exits: set[str] = field(default_factory=set)

    def check_failed(self) -> bool:
        """Count a failed exit check; True when tor is to blame."""
        self.checks += 1
        return self.checks >= TRANSPORT_FAILURE_LIMIT

    def build_failed(self, exit_fingerprint: str) -> bool:
        """Count a failed build through ``exit_fingerprint``; True when tor is to blame."""
        self.builds += 1
        self.failed_exits.add(exit_fingerprint)
        return self.builds >= BUILD_FAILURE_LIMIT

    def pause(self) -> float:
        """Seconds to wait before the next try after ``builds`` failed builds in a row."""
        return min(BUILD_PAUSE * 2 ** max(0, self.builds - 1), BUILD_MAX_PAUSE) if self.builds else 0.0

    def built(self) -> None:
        """Tor built a circuit: the failed builds before were the paths', not tor's."""
        self.builds = 0

    def checked(self) -> None:
        """Tor carried an exit check."""
        self.checks = 0

    def retry_failed_exits(self) -> bool:
        """No other exit is free: whether there are failed ones to try again (once more each)."""
        retry = bool(self.failed_exits)
        self.failed_exits.clear()
        return retry


def short_reason(exc: BaseException) -> str:
    """The innermost cause of a requests error in one line, without urllib3's object reprs."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason if reason is not None else exc)
    return text.split("): ", 1)[-1] if text.startswith(("<", "Verified", "SOCKS", "HTTP")) else text


class RotatingTorClient:
    """Hands out ``TorSession``s on fresh exits, and offers the ``requests`` interface on top.

    ``client.get(url)`` runs one request on a fresh exit and ends that session; ``new_session()``
    gives a session to keep for several requests (e.g. the three of one YouTube video). The
    client connects to tor at construction, so a wrong port or password fails here, clearly.
    """

    def __init__(
        self,
        cooldown_hours: float = 1.0,
        *,
        tor_host: str = DEFAULT_TOR_HOST,
        tor_port: int = DEFAULT_SOCKS_PORT,
        control_port: int = DEFAULT_CONTROL_PORT,
        tor_password: str | None = None,
        endpoint: TorEndpoint | None = None,
        strategy: str | RotationStrategy = "isolate",
        ip_check_url: str = DEFAULT_IP_CHECK_URL,
        ledger: ExitLedger | None = None,
        ledger_path: str | Path | PostgresDsn | None = None,
        quarantine_hours: float = 6.0,
        ca_bundle: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_rotation_attempts: int = 24,
        keep_conflux: bool = False,
        tor_changes_path: str | Path | None = None,
    ) -> None:
        self.endpoint = endpoint or TorEndpoint(tor_host, tor_port, tor_host, control_port, tor_password)
        self.cooldown = timedelta(hours=cooldown_hours)
        self.ip_check_url = ip_check_url
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.max_rotation_attempts = max_rotation_attempts
        self._owns_ledger = ledger is None
        self.ledger = ledger or ExitLedger(
            ledger_path or ExitLedger.default_path(),
            cooldown=self.cooldown,
            quarantine=timedelta(hours=quarantine_hours),
        )
        self._holder = ExitLedger.make_holder("client")
        self._prefix = f"ytsb-{secrets.token_hex(4)}-"
        self._counter = 0
        self._lock = threading.Lock()
        self._identities: dict[str, Identity] = {}
        self._leases: dict[str, ExitLease] = {}
        self.stats = {
            "allocated": 0,
            "rejected": 0,
            "transport_failures": 0,
            "build_failures": 0,
            "moved": 0,
            "drifted": 0,
        }
        self.strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
        probe_socks_port(self.endpoint)
        # Next to a ledger file (the state directory), where `doctor` looks for what a crash left;
        # with a ledger on a server, in the user's state directory (callers pass their own).
        state_dir = None if self.ledger.path is None else self.ledger.path.parent
        self._tor_changes = TorChanges(tor_changes_path or TorChanges.default_path(state_dir))
        self._controller = open_controller(self.endpoint)
        self._conflux_change: Change | None = None
        self._closed = False
        try:
            if not keep_conflux:
                self._disable_conflux()
            self._monitor = StreamMonitor(self._controller, self._prefix)
            self._monitor.start()
            self.strategy.attach(self._controller)
        except Exception:
            self._restore_tor()
            self._controller.close()
            raise
        log.debug("rotating client ready (strategy %s)", self.strategy.name)

    def _disable_conflux(self) -> None:
        """Turn tor's conflux off while we run (it is restored on ``close()``, and recorded first
        in the state directory so that ``doctor --fix`` can restore it after a crash).

        Conflux (on by default since tor 0.4.8) moves later connections of one SOCKS username
        to a linked circuit pair that may end at another exit: measured on the lab, 5 of 40
        sessions would have sent their YouTube requests from an exit nobody checked, against
        0 of 40 with conflux off. Only new circuits are affected; other users of this tor just
        lose conflux's latency gain.
        """
        tor = identify(self._controller, self.endpoint)
        self._conflux_change = self._tor_changes.apply(self._controller, tor, "ConfluxEnabled", "0", self._holder)
        if self._conflux_change is not None:
            log.info(
                "conflux is off while we run (it moves streams between exits); it was %s",
                self._conflux_change.original_text,
            )
        # Linked circuits tor built before stay usable, and new streams prefer them: close the
        # ones that carry no stream yet (tor builds plain circuits instead).
        busy = {
            line.split()[2]
            for line in self._controller.get_info("stream-status", "").splitlines()
            if len(line.split()) > 2
        }
        for circuit in self._controller.get_circuits([]):
            if circuit.purpose and circuit.purpose.startswith("CONFLUX") and circuit.id not in busy:
                close_circuit(self._controller, circuit.id)

    # -- sessions --------------------------------------------------------------------------

    def _next_username(self) -> str:
        with self._lock:
            self._counter += 1
            return f"{self._prefix}{self._counter}"

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _avoid_fingerprints(self) -> set[str]:
        """Exits not worth a circuit: taken, or not free within ``PREPARE_AHEAD``."""
        soon = datetime.now(UTC) + timedelta(seconds=PREPARE_AHEAD)
        return {
            state.fingerprint
            for state in self.ledger.unavailable()
            if state.fingerprint and (state.reserved_by is not None or (state.free_at and state.free_at > soon))
        }

    def _reserve(self, exit_info: ExitInfo) -> ExitLease | None:
        """The exit's lease; for an exit whose cooldown ends within ``PREPARE_AHEAD``, taken once
        it has ended (a bounded wait). None when the exit is taken or cooling for longer."""
        lease = self.ledger.try_reserve(exit_info.ip, exit_info.fingerprint, holder=self._holder)
        if lease is not None:
            return lease
        state = self.ledger.state(exit_info.ip)
        if state is None or state.reserved_by is not None or state.free_at is None:
            return None
        wait = (state.free_at - datetime.now(UTC)).total_seconds()
        if wait > PREPARE_AHEAD or self._closed:
            return None
        time.sleep(max(0.0, wait) + 0.005)
        return self.ledger.try_reserve(exit_info.ip, exit_info.fingerprint, holder=self._holder)

    def new_session(self, *, timeout: float = 120.0) -> TorSession:
        """A session whose exit was just checked, is unique and is not cooling down.

        Raises ``ExitsExhausted`` (with the earliest time an exit frees up) when no acceptable
        exit turned up within ``max_rotation_attempts`` tries, and ``TorUnavailable`` when tor
        keeps failing to carry any connection at all.
        """
        deadline = time.monotonic() + timeout
        while True:
            session = self._try_sessions(deadline)
            if session is not None:
                return session
            unpicked = self._unpicked_exits()
            if unpicked and time.monotonic() + UNPICKED_RETRY < deadline:
                # Free exits exist, tor just did not pick them (it weighs exits by bandwidth, and a
                # young network may favour a few): another round soon, within the timeout.
                log.info(
                    "tor picked none of the %d free exits in %d tries; trying again",
                    unpicked,
                    self.max_rotation_attempts,
                )
                time.sleep(1.0)
                continue
            break
        if unpicked:
            return_at = datetime.now(UTC) + timedelta(seconds=UNPICKED_RETRY)
            raise ExitsExhausted(
                f"no fresh exit in {self.max_rotation_attempts}-try rounds for {timeout:.0f} s although "
                f"{unpicked} exits in tor's consensus are free; trying again in {UNPICKED_RETRY:.0f} s",
                return_at,
            )
        earliest = self.ledger.earliest_free_at()
        raise ExitsExhausted(
            f"no fresh exit after {self.max_rotation_attempts} tries"
            + (f"; the first cooling exit frees up at {earliest:%H:%M:%S} UTC" if earliest else ""),
            earliest,
            retry_at=earliest - timedelta(seconds=PREPARE_AHEAD) if earliest else None,
        )

    def _try_sessions(self, deadline: float) -> TorSession | None:
        """One round of up to ``max_rotation_attempts`` identities; None if none was acceptable."""
        failures = FailureCount()
        for _ in range(self.max_rotation_attempts):
            if time.monotonic() > deadline:
                break
            username = self._next_username()
            try:
                identity = self.strategy.next_identity(
                    username,
                    avoid=self._avoid_fingerprints() | failures.failed_exits,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
                failures.built()
                session = TorSession(
                    self.endpoint, username=username, timeout=self.timeout, ca_bundle=self.ca_bundle, owner=self
                )
                exit_info = self._check_or_discard(session, identity)
            except ExitsExhausted:
                if failures.retry_failed_exits():
                    continue  # only exits whose build failed are free: give them another try
                break  # the strategy knows no candidate: report when the first one frees up
            except ExitRefused as exc:
                log.debug("%s", exc)
                continue
            except CircuitBuildFailed as exc:  # this path's fault first, tor's only when it repeats
                self._raise_if_closed()
                self._count("build_failures")
                log.debug("%s; trying another exit", exc)
                if failures.build_failed(exc.exit_fingerprint):
                    raise TorUnavailable(f"tor built none of {failures.builds} circuits in a row: {exc}") from None
                time.sleep(max(0.0, min(failures.pause(), deadline - time.monotonic())))
                continue
            except (TorError, requests.RequestException) as exc:  # this circuit, or tor itself?
                self._raise_if_closed()
                self._count("transport_failures")
                log.debug("no exit check on a new circuit: %s", exc)
                if failures.check_failed():
                    raise TorUnavailable(
                        f"tor carried none of {failures.checks} exit checks to {self.ip_check_url}: {short_reason(exc)}"
                    ) from None
                continue
            failures.checked()
            if exit_info.fingerprint is None:  # tor did not report the check's stream in time
                log.debug("no exit relay known for %s; trying another circuit", username)
                session.close()
                self._forget(identity)
                continue
            lease = self._reserve(exit_info)
            if lease is None:
                self._count("rejected")
                log.debug("exit %s is taken or cooling down; trying another", exit_info.ip)
                session.close()
                self._forget(identity)
                continue
            with self._lock:
                self._identities[username] = identity
                self._leases[username] = lease
                self.stats["allocated"] += 1
            session.bind(exit_info, self)
            log.debug("session %s on exit %s", username, exit_info.ip)
            return session
        return None

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise TorError("the client was closed while making a session") from None

    def _unpicked_exits(self) -> int:
        """How many exit relays of the consensus the ledger does not know as unavailable."""
        unavailable = self.ledger.unavailable()
        fingerprints = {state.fingerprint for state in unavailable if state.fingerprint}
        addresses = {state.exit_ip for state in unavailable}
        return sum(
            1
            for relay in self._controller.get_network_statuses([])
            if "Exit" in relay.flags
            and "BadExit" not in relay.flags
            and relay.fingerprint not in fingerprints
            and relay.address not in addresses
        )

    def _check_or_discard(self, session: TorSession, identity: Identity) -> ExitInfo:
        try:
            return self._check(session, identity)
        except BaseException:
            session.close()
            self._forget(identity)
            raise

    def _check(self, session: TorSession, identity: Identity) -> ExitInfo:
        """Read the exit IP through the session itself and the exit relay from tor's events."""
        before = len(self._monitor.wait_for_streams(identity.username, 0, 0))
        ip = check_exit_ip(session, self.ip_check_url)
        streams = self._monitor.wait_for_streams(identity.username, before + 1, STREAM_REPORT_TIMEOUT)
        last = streams[-1] if streams else None
        return ExitInfo(
            ip=ip,
            fingerprint=last.exit_fingerprint if last else identity.exit_fingerprint,
            circuit_id=last.circuit_id if last else identity.circuit_id,
            verified_at=datetime.now(UTC),
        )

    def is_stale(self, session: TorSession, max_age: float) -> bool:
        """Whether the session's circuit may have moved since it was checked."""
        identity = self._identities.get(session.socks_username)
        if session.exit is None or identity is None:
            return True
        age = (datetime.now(UTC) - session.exit.verified_at).total_seconds()
        return age > max_age or self.strategy.is_stale(identity)

    def revalidate(self, session: TorSession) -> bool:
        """Check the session's exit again on a new connection; False (and the session ended)
        when its circuit is gone.

        Used before handing out a session that waited long (tor moves a username to a new
        circuit after MaxCircuitDirtiness) or that a NEWNYM may have moved. The new connection is
        held to the checked exit like any other, so a moved session fails here, not later.
        """
        identity = self._identities.get(session.socks_username)
        if identity is None or session.exit is None:
            return False
        session.drop_connections()
        try:
            exit_info = self._check(session, identity)
        except requests.RequestException as exc:
            log.debug("session %s lost its exit %s: %s", session.socks_username, session.exit_ip, exc)
            session.end_as(SessionOutcome.CANCELLED)
            session.close()
            return False
        session.bind(
            ExitInfo(session.exit.ip, session.exit.fingerprint, session.exit.circuit_id, exit_info.verified_at), self
        )
        return True

    # -- SessionOwner ------------------------------------------------------------------------

    def verify_stream(self, session: TorSession, local_port: int) -> bool:
        """Whether tor put our new connection from ``local_port`` on the session's checked exit.

        The exit check's own connection comes first: when tor put it on an exit the ledger
        already knows as unavailable, it is refused (``ExitRefused``) before the TLS handshake
        and the echo request, which are most of a check's time through Tor.
        """
        use = self._monitor.wait_for_source(local_port, STREAM_REPORT_TIMEOUT)
        if session.exit is None:
            if use is not None and use.exit_fingerprint in self._avoid_fingerprints():
                self._count("rejected")
                self._monitor.discard(session.socks_username, use)
                raise ExitRefused(
                    f"session {session.socks_username}: tor chose exit {use.exit_fingerprint}, "
                    "which is taken or cooling down; trying another"
                )
            return True  # unknown here: the exit check decides
        checked = session.exit.fingerprint
        if use is not None and checked is not None and use.exit_fingerprint == checked:
            return True
        self._count("moved")
        if use is not None:
            # Close the circuit tor moved us to, so the retry lands on the checked one.
            self._monitor.discard(session.socks_username, use)
            close_circuit(self._controller, use.circuit_id)
        log.debug(
            "session %s: a new connection left from %s, not the checked exit %s; reconnecting",
            session.socks_username,
            use.exit_fingerprint if use else "an unreported circuit",
            checked,
        )
        return False

    def exits_used(self, session: TorSession) -> list[str]:
        """The exit IPs of every stream the session opened, in order, without repeats."""
        ips: list[str] = []
        for use in self._monitor.wait_for_streams(session.socks_username, 0, 0):
            ip = self._ip_of(use.exit_fingerprint, session)
            if ip and ip not in ips:
                ips.append(ip)
        return ips

    def _ip_of(self, fingerprint: str | None, session: TorSession) -> str | None:
        if session.exit and fingerprint == session.exit.fingerprint:
            return session.exit.ip
        if fingerprint is None:
            return None
        status = self._controller.get_network_status(fingerprint, None)
        return status.address if status is not None else None

    def finish_session(self, session: TorSession) -> None:
        """End the session's lease: its exit starts cooling now; a block quarantines it."""
        username = session.socks_username
        with self._lock:
            identity = self._identities.pop(username, None)
            lease = self._leases.pop(username, None)
        if lease is None or identity is None:
            return
        try:
            if session.outcome == SessionOutcome.CANCELLED:
                self.ledger.cancel(lease)
                return
            for ip in self.exits_used(session):
                if ip != lease.exit_ip:
                    self._count("drifted")
                    log.warning(
                        "session %s also left from exit %s (not the checked %s); recorded", username, ip, lease.exit_ip
                    )
                    self.ledger.record_use(ip, None, outcome=str(SessionOutcome.DRIFT), label=session.label)
            if session.outcome == SessionOutcome.BLOCKED:
                self.ledger.quarantine(lease.exit_ip, lease.fingerprint, reason=session.outcome_text)
            self.ledger.release(lease, outcome=session.outcome_text, label=session.label)
        finally:
            self._forget(identity)

    def _forget(self, identity: Identity) -> None:
        self.strategy.discard(identity)
        self._monitor.forget(identity.username)

    # -- the requests interface ----------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[TorSession]:
        """``with client.session() as s:`` a fresh-exit session, ended on leaving the block."""
        session = self.new_session()
        try:
            yield session
        finally:
            session.close()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request on a fresh exit. The response body is read before the session ends."""
        with self.session() as session:
            response = session.request(method, url, **kwargs)
            response.content  # noqa: B018 - read it while the connection is still ours
            return response

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def get_status(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.name,
            "cooldown_hours": self.cooldown.total_seconds() / 3600,
            "sessions_open": len(self._leases),
            **self.stats,
            "exits_unavailable": len(self.ledger.unavailable()),
        }

    def close(self) -> None:
        """Stop watching tor, hand back anything the strategy changed in it, put conflux back."""
        self._closed = True
        try:
            self.strategy.detach()
            self._monitor.stop()
        except stem.ControllerError as exc:  # tor is gone: nothing left to hand back
            log.debug("detaching from tor failed: %s", exc)
        finally:
            self._restore_tor()
            self._controller.close()
            if self._owns_ledger:
                self.ledger.close()

    def _restore_tor(self) -> None:
        """Put back the conflux setting we changed; if that fails, the record stays for doctor."""
        change, self._conflux_change = self._conflux_change, None
        if change is None:
            return
        try:
            self._tor_changes.restore(self._controller, change)
        except stem.ControllerError as exc:  # tor is gone, or `doctor --fix` restores it from the record
            log.debug("restoring tor's %s failed: %s", change.setting, exc)
        except TorChangesError as exc:
            log.warning("%s; tor's %s stays %s until tor restarts", exc, change.setting, change.ours)

    def __enter__(self) -> RotatingTorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
