"""Opening an authenticated stem controller, with one clear error per way it can fail."""

from __future__ import annotations

import logging
import socket

import stem
import stem.connection
from stem.control import Controller

from .errors import TorAuthError, TorUnavailable
from .tor_settings import TorEndpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


def open_controller(endpoint: TorEndpoint, *, timeout: float = CONNECT_TIMEOUT) -> Controller:
    """Connect to tor's ControlPort and authenticate with whatever it offers.

    stem tries no-auth, password, SAFECOOKIE and COOKIE in turn (PROTOCOLINFO tells which the
    daemon accepts), so a cookie-authenticated tor needs no setting. stem's own connect has no
    timeout, hence the bounded probe first.
    """
    address = (endpoint.control_host, endpoint.control_port)
    where = f"{endpoint.control_host}:{endpoint.control_port}"
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        raise TorUnavailable(
            f"nothing answers on tor's control port {where} ({exc.strerror or exc}); "
            "start tor with a ControlPort, or point --tor-control at it"
        ) from None
    try:
        controller = Controller.from_port(address=endpoint.control_host, port=endpoint.control_port)
    except stem.SocketError as exc:
        raise TorUnavailable(f"cannot open tor's control port {where}: {exc}") from None
    try:
        controller.authenticate(password=endpoint.control_password)
    except stem.connection.MissingPassword:
        controller.close()
        raise TorAuthError(
            f"tor's control port {where} needs a password: pass --tor-password "
            "(or set YTSB_TOR_PASSWORD)"
        ) from None
    except stem.connection.IncorrectPassword:
        controller.close()
        raise TorAuthError(f"tor's control port {where} refused the control password") from None
    except stem.connection.UnreadableCookieFile as exc:
        controller.close()
        raise TorAuthError(
            f"cannot read tor's auth cookie {exc.cookie_path}: run as a user that may read it "
            "(on Debian: the debian-tor group) or use a control password"
        ) from None
    except (stem.connection.AuthenticationFailure, stem.SocketError) as exc:
        controller.close()
        raise TorAuthError(f"tor's control port {where} refused us: {exc}") from None
    if endpoint.control_password is not None and not password_accepted(endpoint, endpoint.control_password,
                                                                        timeout=timeout):
        log.warning("warning: tor refused the control password; authenticated with its cookie instead "
                    "(drop --tor-password / YTSB_TOR_PASSWORD, or fix it)")
    log.debug("authenticated to tor %s at %s", controller.get_version(), where)
    return controller


def probe_socks_port(endpoint: TorEndpoint, *, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail early, and clearly, when nothing listens on the SOCKS port."""
    try:
        socket.create_connection((endpoint.socks_host, endpoint.socks_port), timeout=timeout).close()
    except OSError as exc:
        raise TorUnavailable(
            f"nothing answers on tor's SOCKS port {endpoint.socks_host}:{endpoint.socks_port} "
            f"({exc.strerror or exc}); point --tor-socks at it"
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
