"""``yt-study-buddy doctor``: check each link from tor's control port to YouTube, in order, and
say how to fix the first broken one. A check that needs a failed one is skipped, not run."""

from __future__ import annotations

import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import stem
import stem.connection
from stem.connection import AuthMethod
from stem.control import EventType, Listener, Signal
from stem.response.events import SignalEvent

from .._exceptions import ExitCheckError, TorAuthError, TorChangesError, TorError, TorUnavailable
from ..tor._changes import TorChanges, identify, read_setting
from ..tor._control import CONNECT_TIMEOUT, BoundedController, open_controller, probe_socks_port
from ..tor._endpoint import TorEndpoint
from ..tor._exit_check import check_exit_ip
from ..tor._session import TorSession
from ..tor._stream_monitor import StreamMonitor
from ._hints import with_cli_hints

log = logging.getLogger(__name__)

DEFAULT_YOUTUBE_URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
#: tor applies at most one NEWNYM per 10 s and defers the rest; 12 s covers one deferral.
NEWNYM_WAIT = 12.0
#: tor reports a stream on its event thread shortly after the SOCKS reply.
STREAM_REPORT_WAIT = 5.0
_USERNAME_PREFIX = "ytsb-doctor-"

CONTROL_PORT = "control port reachable"
AUTHENTICATION = "control authentication"
BOOTSTRAP = "tor bootstrapped"
NEWNYM = "NEWNYM allowed"
STREAM_ATTACHMENT = "stream attachment"
CONFLUX = "conflux"
SOCKS_PORT = "SOCKS port"
EXIT_ECHO = "exit echo"
WATCH_PAGE = "YouTube watch page"

BLOCKED = "this exit is blocked by YouTube (normal for many Tor exits; the batch retries on fresh exits)"

_AUTH_FIXES: tuple[tuple[type[Exception], str], ...] = (
    (
        stem.connection.MissingPassword,
        "pass tor's control password with --tor-password (or YTSB_TOR_PASSWORD)",
    ),
    (
        stem.connection.IncorrectPassword,
        "pass the password whose hash is tor's HashedControlPassword (tor --hash-password makes "
        "a new hash), with --tor-password or YTSB_TOR_PASSWORD",
    ),
    (
        stem.connection.UnreadableCookieFile,
        "run as a user that may read tor's auth cookie (Debian: sudo adduser $USER debian-tor, "
        "then log in again), or set a control password",
    ),
)
_AUTH_FIX_OTHER = "enable CookieAuthentication 1 or a HashedControlPassword in tor's torrc"
_BOT_CHECK = re.compile(r"confirm you.{1,6}re not a bot|LOGIN_REQUIRED")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report; ``fix`` says what to do when it fails."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False

    def __post_init__(self) -> None:
        # Details quote the Tor layer's errors, which name settings in plain words.
        object.__setattr__(self, "detail", with_cli_hints(self.detail))


def run_checks(
    endpoint: TorEndpoint,
    *,
    ip_check_url: str,
    ca_bundle: str | None = None,
    youtube_url: str = DEFAULT_YOUTUBE_URL,
    timeout: float = 30.0,
    fix: bool = False,
    state_dir: Path | None = None,
) -> list[Check]:
    """Run every check in order; ``fix`` also resets what a crashed run left in tor.

    The NEWNYM check really sends NEWNYM: tor's new streams then get fresh circuits, which
    does not disturb open connections. ``state_dir`` is where runs record what they change in
    tor (the runs' ``--state-dir``).
    """
    doctor = _Doctor(endpoint, ip_check_url, ca_bundle, youtube_url, timeout, fix, TorChanges.default_path(state_dir))
    try:
        return doctor.run()
    finally:
        doctor.close()


def reset_stream_attachment(endpoint: TorEndpoint, *, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Let tor attach new streams itself again; True when ``__LeaveStreamsUnattached`` was set.

    A pinned-exit run sets it and resets it when it ends; a crash leaves it set, and every
    other program's connections through this tor then hang.
    """
    controller = open_controller(endpoint, timeout=timeout)
    try:
        was_set = bool(controller.get_conf("__LeaveStreamsUnattached", "0") == "1")
        if was_set:
            controller.reset_conf("__LeaveStreamsUnattached")
            log.info("reset __LeaveStreamsUnattached on %s:%d", endpoint.control_host, endpoint.control_port)
        return was_set
    finally:
        controller.close()


def format_checks(checks: list[Check]) -> str:
    """One line per check (✓ passed, ✗ failed, - skipped), a ``fix:`` line under failures."""
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        mark = "✓" if check.ok else "-" if check.skipped else "✗"
        lines.append(f"{mark} {check.name.ljust(width)}  {check.detail}".rstrip())
        if check.fix and not check.ok:
            lines.append(f"    fix: {check.fix}")
    return "\n".join(lines)


class _Doctor:
    """Holds what checks share: the controller and the session (its exit) once they exist."""

    def __init__(
        self,
        endpoint: TorEndpoint,
        ip_check_url: str,
        ca_bundle: str | None,
        youtube_url: str,
        timeout: float,
        fix: bool,
        changes_path: Path,
    ) -> None:
        self.endpoint = endpoint
        self.changes_path = changes_path
        self.ip_check_url = ip_check_url
        self.ca_bundle = ca_bundle
        self.youtube_url = youtube_url
        self.timeout = timeout
        self.fix = fix
        self.control_where = f"{endpoint.control_host}:{endpoint.control_port}"
        self.controller: BoundedController | None = None
        self.session: TorSession | None = None
        self.monitor: StreamMonitor | None = None
        self.exit_ip = ""

    def run(self) -> list[Check]:
        plan: list[tuple[str, tuple[str, ...], Callable[[], Check]]] = [
            (CONTROL_PORT, (), self.control_port),
            (AUTHENTICATION, (CONTROL_PORT,), self.authentication),
            (BOOTSTRAP, (AUTHENTICATION,), self.bootstrap),
            (NEWNYM, (AUTHENTICATION,), self.newnym),
            (STREAM_ATTACHMENT, (AUTHENTICATION,), self.stream_attachment),
            (CONFLUX, (AUTHENTICATION,), self.conflux),
            (SOCKS_PORT, (AUTHENTICATION,), self.socks_port),
            # With streams left unattached, the echo request would only hang.
            (EXIT_ECHO, (BOOTSTRAP, STREAM_ATTACHMENT, SOCKS_PORT), self.exit_echo),
            (WATCH_PAGE, (EXIT_ECHO,), self.watch_page),
        ]
        results: dict[str, Check] = {}
        for name, needs, check in plan:
            missing = next((need for need in needs if not results[need].ok), None)
            if missing is not None:
                results[name] = Check(name, False, f"skipped: needs {missing}", skipped=True)
                continue
            try:
                results[name] = check()
            except (stem.ControllerError, OSError, TorError) as exc:  # OSError covers requests'
                results[name] = Check(name, False, f"{type(exc).__name__}: {exc}")
            log.debug("doctor: %s", results[name])
        return list(results.values())

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.monitor is not None:
            self.monitor.stop()
        if self.controller is not None:
            self.controller.close()

    def _require_controller(self) -> BoundedController:
        assert self.controller is not None, "run order: authentication comes first"
        return self.controller

    # -- the checks, in order ------------------------------------------------------------------

    def control_port(self) -> Check:
        address = (self.endpoint.control_host, self.endpoint.control_port)
        try:
            socket.create_connection(address, timeout=self.timeout).close()
        except OSError as exc:
            return Check(
                CONTROL_PORT,
                False,
                f"nothing answers on {self.control_where} ({exc.strerror or exc})",
                f"start tor with 'ControlPort {self.endpoint.control_port}' and 'CookieAuthentication 1' "
                "in its torrc (Debian: sudo systemctl start tor), or point --tor-control at a running "
                "tor; `yt-study-buddy fetch` starts a tor of its own when none answers",
            )
        return Check(CONTROL_PORT, True, self.control_where)

    def authentication(self) -> Check:
        try:
            self.controller = open_controller(self.endpoint, timeout=self.timeout)
        except TorAuthError as exc:
            # open_controller's message names the problem; the stem error it replaced says which.
            cause = exc.__context__
            fix = next((text for kind, text in _AUTH_FIXES if isinstance(cause, kind)), _AUTH_FIX_OTHER)
            return Check(AUTHENTICATION, False, str(exc), fix)
        except TorUnavailable as exc:
            return Check(AUTHENTICATION, False, str(exc))
        # Which method worked: stem tries a given password first, and falls back to the cookie
        # when tor refuses it, so a wrong password only shows when tried on its own (as
        # open_controller did).
        methods = set(self.controller.get_protocolinfo().auth_methods)
        password = self.endpoint.control_password
        if password is not None and AuthMethod.PASSWORD in methods and self.controller.password_accepted:
            method = "password"
        elif methods & {AuthMethod.COOKIE, AuthMethod.SAFECOOKIE}:
            method = "cookie"
        else:
            method = "none needed (any local program may control this tor)"
        detail = f"{method}, tor {self.controller.get_version()}"
        if password is not None and method != "password":
            detail += (
                "; the given control password is wrong: tor refused it"
                if AuthMethod.PASSWORD in methods
                else "; the given control password is not used: tor offers no password auth"
            )
        return Check(AUTHENTICATION, True, detail)

    def bootstrap(self) -> Check:
        phase = self._require_controller().get_info("status/bootstrap-phase")
        progress = re.search(r"PROGRESS=(\d+)", phase)
        summary = re.search(r'SUMMARY="([^"]*)"', phase)
        warning = re.search(r'WARNING="([^"]*)"', phase)
        percent = int(progress.group(1)) if progress else 0
        detail = f"{percent} %" + (f" ({summary.group(1)})" if summary else "")
        if percent == 100:
            return Check(BOOTSTRAP, True, detail)
        if warning:
            detail += f"; tor warns: {warning.group(1)}"
        return Check(
            BOOTSTRAP,
            False,
            detail,
            "wait a minute for tor to finish; if it stays stuck, tor cannot reach the Tor network: "
            "read its log (Debian: journalctl -u tor@default) and check the clock, firewall or Bridges",
        )

    def newnym(self) -> Check:
        controller = self._require_controller()
        applied = threading.Event()

        def on_signal(event: SignalEvent) -> None:
            if event.signal == Signal.NEWNYM:
                applied.set()

        wait = min(NEWNYM_WAIT, self.timeout)
        controller.events.subscribe(EventType.SIGNAL, on_signal)
        try:
            began = time.monotonic()
            try:
                controller.signal(Signal.NEWNYM)
            except stem.ControllerError as exc:
                return Check(NEWNYM, False, f"tor refused SIGNAL NEWNYM: {exc}")
            if applied.wait(wait):
                return Check(NEWNYM, True, f"applied after {time.monotonic() - began:.1f} s")
        finally:
            controller.events.unsubscribe(on_signal)
        return Check(
            NEWNYM,
            False,
            f"tor accepted NEWNYM but did not apply it within {wait:g} s",
            "tor applies one NEWNYM per 10 s and ignores it without a SocksPort: stop other programs "
            "that send NEWNYM (another yt-study-buddy run?) and try again",
        )

    def stream_attachment(self) -> Check:
        if self._require_controller().get_conf("__LeaveStreamsUnattached", "0") != "1":
            return Check(STREAM_ATTACHMENT, True, "tor attaches streams itself")
        if self.fix and reset_stream_attachment(self.endpoint, timeout=self.timeout):
            return Check(STREAM_ATTACHMENT, True, "__LeaveStreamsUnattached was 1: reset (--fix)")
        return Check(
            STREAM_ATTACHMENT,
            False,
            "__LeaveStreamsUnattached is 1: new streams wait for a controller to attach them "
            "(a crashed pinned-exit run leaves this)",
            "if no yt-study-buddy run is active: yt-study-buddy doctor --fix resets it",
        )

    def conflux(self) -> Check:
        """Conflux off is fine when tor's configuration says so. Left off by a run that died, it
        is reported, and with --fix put back, from the record runs keep in the state directory."""
        controller = self._require_controller()
        value, _ = read_setting(controller, "ConfluxEnabled")
        if value == "0":
            own = Check(CONFLUX, True, "ConfluxEnabled 0 by tor's own configuration")
        else:
            own = Check(CONFLUX, True, f"ConfluxEnabled {value} (yt-study-buddy turns it off while it runs)")
        if not self.changes_path.exists():  # no run recorded anything here
            return own
        try:
            changes = TorChanges(self.changes_path)
            tor = identify(controller, self.endpoint)
            live = changes.held_by_live(tor, "ConfluxEnabled")
            left = changes.left_by_dead(controller, tor, "ConfluxEnabled")
            repaired = changes.repair(controller, tor, "ConfluxEnabled") if self.fix else None
        except TorChangesError as exc:
            return Check(CONFLUX, False, str(exc), "make the state directory readable, or pass --state-dir")
        if repaired is not None:
            return Check(
                CONFLUX,
                True,
                f"ConfluxEnabled 0 was left by a run that died (pid {repaired.holder_pid}): "
                f"put back to {repaired.original_text} (--fix)",
            )
        if live and value == "0":
            pids = ", ".join(sorted({str(change.holder_pid) for change in live}))
            return Check(
                CONFLUX,
                True,
                f"ConfluxEnabled 0 while a yt-study-buddy run works (pid {pids}); it is put back when the run ends",
            )
        if left:
            return Check(
                CONFLUX,
                False,
                f"ConfluxEnabled 0 was left by a yt-study-buddy run that died (pid {left[0].holder_pid}); "
                f"it was {left[0].original_text}",
                "yt-study-buddy doctor --fix puts it back (meanwhile harmless for yt-study-buddy; other "
                "programs on this tor lose conflux's speed-up)",
            )
        return own

    def socks_port(self) -> Check:
        listeners = self._require_controller().get_listeners(Listener.SOCKS, [])
        ours = ", ".join(f"{host}:{port}" for host, port in listeners)
        where = f"{self.endpoint.socks_host}:{self.endpoint.socks_port}"
        if not listeners:
            return Check(SOCKS_PORT, False, "tor has no SocksPort", "add 'SocksPort 9050' to tor's torrc")
        try:
            probe_socks_port(self.endpoint, timeout=self.timeout)
        except TorUnavailable as exc:
            return Check(SOCKS_PORT, False, str(exc), f"this tor's SOCKS ports: {ours}; pass --tor-socks")
        if all(port != self.endpoint.socks_port for _, port in listeners):
            return Check(
                SOCKS_PORT,
                False,
                f"{where} answers, but the tor on {self.control_where} listens for SOCKS on {ours}",
                f"point --tor-socks at {ours.split(', ')[0]}: SOCKS and control must be the same tor",
            )
        return Check(SOCKS_PORT, True, where)

    def exit_echo(self) -> Check:
        read = self.timeout
        # Watch this session's streams: the watch page's connection may leave from another exit
        # than the echo's (conflux), and the report names the exit tor really used.
        self.monitor = StreamMonitor(self._require_controller(), _USERNAME_PREFIX)
        self.monitor.start()
        self.session = TorSession(
            self.endpoint,
            username=f"{_USERNAME_PREFIX}{secrets.token_hex(4)}",
            timeout=(min(20.0, read), read),
            ca_bundle=self.ca_bundle,
        )
        try:
            self.exit_ip = check_exit_ip(self.session, self.ip_check_url)
        except ExitCheckError as exc:
            fix = 'pass an echo service that answers {"IP": ...} with --ip-check-url'
            return Check(EXIT_ECHO, False, str(exc), fix)
        except requests.RequestException as exc:
            return Check(
                EXIT_ECHO,
                False,
                f"{self.ip_check_url} through tor: {type(exc).__name__}: {exc}",
                "tor may still be building circuits: try again in a minute; if it keeps failing, "
                "read tor's log and check --ip-check-url",
            )
        return Check(EXIT_ECHO, True, f"exit IP {self.exit_ip}")

    def watch_page(self) -> Check:
        assert self.session is not None, "run order: the exit echo comes first"
        try:
            response = self.session.get(self.youtube_url)
        except requests.RequestException as exc:
            via = self._watch_page_exits()
            return Check(
                WATCH_PAGE,
                False,
                f"{type(exc).__name__} via {via}: {exc}",
                "run doctor again for another exit; if every exit fails, check --tor-socks and tor's log",
            )
        page = response.text
        via = self._watch_page_exits()
        blocked_by = (
            "429 Too Many Requests" if response.status_code == 429
            else "recaptcha" if 'class="g-recaptcha"' in page or "/sorry/" in response.url
            else "bot check" if _BOT_CHECK.search(page)
            else None
        )  # fmt: skip
        if blocked_by is not None:
            fix = "none needed; run doctor again to try another exit"
            return Check(WATCH_PAGE, False, f"{BLOCKED}: {blocked_by} for {via}", fix)
        if response.status_code == 200 and '"INNERTUBE_API_KEY"' in page:
            return Check(WATCH_PAGE, True, f"HTTP 200 with INNERTUBE_API_KEY via {via}")
        if response.status_code == 200 and "consent.youtube.com" in page:
            return Check(WATCH_PAGE, True, f"cookie consent page via {via} (the fetcher accepts it)")
        return Check(
            WATCH_PAGE,
            False,
            f"HTTP {response.status_code} without INNERTUBE_API_KEY via {via}",
            "try again later; if this persists, YouTube changed its page: update yt-study-buddy",
        )

    def _watch_page_exits(self) -> str:
        """``exit IP`` of the watch page's connections as tor reports them, not as assumed."""
        assert self.monitor is not None and self.session is not None
        username = self.session.socks_username
        uses = self.monitor.wait_for_streams(username, 2, STREAM_REPORT_WAIT)[1:]  # [0]: the echo
        controller = self._require_controller()
        ips: list[str] = []
        for use in uses:
            status = controller.get_network_status(use.exit_fingerprint, None) if use.exit_fingerprint else None
            if status is not None and status.address not in ips:
                ips.append(status.address)
        if not ips:
            return f"exit {self.exit_ip} (tor did not report the connection's circuit)"
        moved = [ip for ip in ips if ip != self.exit_ip]
        via = f"exit{'s' if len(ips) > 1 else ''} {', '.join(ips)}"
        return via + (f" (tor moved the connection off the echoed exit {self.exit_ip})" if moved else "")
