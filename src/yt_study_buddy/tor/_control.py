"""Opening an authenticated stem controller, with one clear error per way it can fail."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from typing import Any

import stem
import stem.connection
import stem.socket
from stem.control import Controller

from .._exceptions import TorAuthError, TorUnavailable
from ._endpoint import CONTROL_PASSWORD_SETTING, CONTROL_PORT_SETTING, SOCKS_PORT_SETTING, TorEndpoint
from ._events import EventDispatcher
from ._redaction import protect_stem, redact

log = logging.getLogger(__name__)
# Before any controller exists: stem's trace of AUTHENTICATE would show the password or cookie.
protect_stem()

CONNECT_TIMEOUT = 10.0
#: tor answers control commands in milliseconds; this only catches a tor that stopped answering.
REPLY_TIMEOUT = 30.0


class BoundedController(Controller):
    """A stem ``Controller`` whose every wait for a reply is bounded, with one event dispatcher.

    stem's ``msg()`` waits for tor's reply without a timeout, so a tor that accepts commands and
    never answers would hang the whole run. One watchdog thread per controller watches the
    commands in flight; when a reply is late it closes the connection, and stem then raises
    ``SocketClosed`` in the waiting call, which callers already treat as tor gone.
    """

    def __init__(self, control_socket: stem.socket.ControlSocket, *, reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.reply_timeout = reply_timeout
        #: The command whose reply never came, once the watchdog closed the connection.
        self.gave_up_on: str | None = None
        #: Whether tor took the given control password on its own (None: no password given).
        self.password_accepted: bool | None = None
        #: The one owner of this controller's tor events (STREAM, CIRC, SIGNAL subscribers).
        self.events = EventDispatcher(self)
        self._pending = threading.Condition()
        self._deadlines: dict[int, tuple[float, str]] = {}  # call number -> (deadline, command)
        self._calls = itertools.count()
        self._watchdog: threading.Thread | None = None
        self._closing = False
        super().__init__(control_socket)

    def msg(self, message: str) -> Any:
        # Only the command's first word is kept: AUTHENTICATE's argument is a password.
        command = (message.split(maxsplit=1) or [""])[0]
        call = next(self._calls)
        with self._pending:
            self._deadlines[call] = (time.monotonic() + self.reply_timeout, command)
            if self._watchdog is None:
                # Also after a close: stem reconnects a closed controller to retry PROTOCOLINFO.
                self._closing = False
                self._watchdog = threading.Thread(target=self._watch, name="tor-reply-watchdog", daemon=True)
                self._watchdog.start()
            self._pending.notify()
        try:
            return super().msg(message)
        finally:
            with self._pending:
                self._deadlines.pop(call, None)
                self._pending.notify()

    def _watch(self) -> None:
        """The watchdog's loop: sleeps until the earliest deadline; ends once closed and idle."""
        while True:
            with self._pending:
                if self._closing and not self._deadlines:
                    self._watchdog = None
                    return
                now = time.monotonic()
                late = [call for call, (deadline, _) in self._deadlines.items() if deadline <= now]
                if not late:
                    earliest = min(
                        (deadline for deadline, _ in self._deadlines.values()), default=now + self.reply_timeout
                    )
                    self._pending.wait(earliest - now)
                    continue
                command = self._deadlines[late[0]][1]
                for call in late:
                    del self._deadlines[call]  # given up on once: the closed socket ends those waits
            self._give_up(command)

    def _give_up(self, command: str) -> None:
        self.gave_up_on = command
        log.warning(
            "tor's control port did not answer %s within %g s; closing the connection",
            self.gave_up_on,
            self.reply_timeout,
        )
        self.close()

    def close(self) -> None:
        """Close the connection; the watchdog ends by itself once no command waits any more.

        Never joined here: stem calls ``close()`` from inside ``msg()`` (holding its message
        lock) when tor goes away, while other threads' commands still wait for that lock.
        """
        with self._pending:
            self._closing = True
            self._pending.notify()
        super().close()


def open_controller(
    endpoint: TorEndpoint, *, timeout: float = CONNECT_TIMEOUT, reply_timeout: float = REPLY_TIMEOUT
) -> BoundedController:
    """Connect to tor's ControlPort and authenticate with whatever it offers.

    stem tries no-auth, password, SAFECOOKIE and COOKIE in turn (PROTOCOLINFO tells which the
    daemon accepts), so a cookie-authenticated tor needs no setting. stem's own connect has no
    timeout, hence the bounded probe first; replies are bounded by ``reply_timeout``.
    """
    address = (endpoint.control_host, endpoint.control_port)
    where = f"{endpoint.control_host}:{endpoint.control_port}"
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        raise TorUnavailable(
            f"nothing answers on tor's control port {where} ({exc.strerror or exc}); "
            f"start tor with a ControlPort, or point {CONTROL_PORT_SETTING} at it"
        ) from None
    try:
        control_socket = stem.socket.ControlPort(address=endpoint.control_host, port=endpoint.control_port)
        controller = BoundedController(control_socket, reply_timeout=reply_timeout)
    except stem.SocketError as exc:
        raise TorUnavailable(f"cannot open tor's control port {where}: {exc}") from None
    try:
        _authenticate(controller, endpoint, where, timeout)
        version = controller.get_version()
    except BaseException:
        controller.close()
        if controller.gave_up_on is not None:
            raise TorUnavailable(
                f"tor's control port {where} did not answer within {reply_timeout:g} s "
                f"({controller.gave_up_on}); is tor overloaded or stuck? restart it"
            ) from None
        raise
    log.debug("authenticated to tor %s at %s", version, where)
    return controller


def _authenticate(controller: BoundedController, endpoint: TorEndpoint, where: str, timeout: float) -> None:
    try:
        controller.authenticate(password=endpoint.control_password)
    except stem.connection.MissingPassword:
        raise TorAuthError(f"tor's control port {where} needs a password: pass {CONTROL_PASSWORD_SETTING}") from None
    except stem.connection.IncorrectPassword:
        raise TorAuthError(f"tor's control port {where} refused the control password") from None
    except stem.connection.UnreadableCookieFile as exc:
        raise TorAuthError(
            f"cannot read tor's auth cookie {exc.cookie_path}: run as a user that may read it "
            "(on Debian: the debian-tor group) or use a control password"
        ) from None
    except (stem.connection.AuthenticationFailure, stem.SocketError) as exc:
        # Some of stem's messages quote tor's AUTHCHALLENGE reply, SERVERHASH included.
        raise TorAuthError(f"tor's control port {where} refused us: {redact(str(exc))}") from None
    password = endpoint.control_password
    if password is None:
        return
    controller.password_accepted = password_accepted(endpoint, password, timeout=timeout)
    if not controller.password_accepted:
        log.warning(
            "warning: tor refused the control password; authenticated with its cookie instead "
            f"(drop {CONTROL_PASSWORD_SETTING}, or fix it)"
        )


def probe_socks_port(endpoint: TorEndpoint, *, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail early, and clearly, when nothing listens on the SOCKS port."""
    try:
        socket.create_connection((endpoint.socks_host, endpoint.socks_port), timeout=timeout).close()
    except OSError as exc:
        raise TorUnavailable(
            f"nothing answers on tor's SOCKS port {endpoint.socks_host}:{endpoint.socks_port} "
            f"({exc.strerror or exc}); point {SOCKS_PORT_SETTING} at it"
        ) from None


def control_port_answers(endpoint: TorEndpoint, *, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether anything listens on the control port (only silence means there is no tor)."""
    try:
        socket.create_connection((endpoint.control_host, endpoint.control_port), timeout=timeout).close()
    except OSError:
        return False
    return True


def password_accepted(endpoint: TorEndpoint, password: str, *, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Try ``password`` alone, on a connection of its own.

    When tor offers its cookie too, stem falls back to the cookie without a word, so a mistyped
    password would go unnoticed. A raw AUTHENTICATE also keeps the wait bounded (stem's is not).
    """
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    address = (endpoint.control_host, endpoint.control_port)
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(f'AUTHENTICATE "{quoted}"\r\n'.encode())
        with conn.makefile("rb") as replies:
            return replies.readline(512).startswith(b"250")


def close_circuit(controller: Controller, circuit_id: str) -> None:
    """Close a circuit if it still exists; a closed or vanished one is not an error."""
    try:
        controller.close_circuit(circuit_id)
    except (stem.InvalidRequest, stem.InvalidArguments, stem.OperationFailed):
        pass  # already closed
    except stem.ControllerError as exc:
        log.debug("closing circuit %s failed: %s", circuit_id, exc)
