"""The fake YouTube's transport: TLS, HTTP/1.1 keep-alive, one daemon thread per connection.

Kept apart from the routing so the protocol logic stays readable. Two transport details matter
to clients (research §1.7): ``Connection: close`` is echoed when asked for (otherwise urllib3
reuses a dead pooled socket), and keep-alive works otherwise (the library sends a video's three
requests on one connection, hence through one Tor exit). A reply marked ``chunked`` goes out
with ``Transfer-Encoding: chunked`` instead of a ``Content-Length``, like YouTube's pages.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

#: A stalled request is dropped unanswered after this long even if the server keeps running.
STALL_LIMIT = 600.0
#: Idle keep-alive connections are closed after this long.
IDLE_TIMEOUT = 30.0
HANDSHAKE_TIMEOUT = 10.0
MAX_BODY = 1 << 20
#: Bytes per chunk of a chunked reply: small, so that even the fake's short bodies span several.
CHUNK_SIZE = 256


@dataclass(frozen=True)
class Request:
    """What the router needs from one HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    host: str
    client_ip: str
    cookies: dict[str, str]
    content_type: str
    body: bytes
    accept_encoding: str = ""


@dataclass(frozen=True)
class Reply:
    """The answer, plus what the log records and how long to hold it back.

    ``stall`` means: never answer (until the server stops or ``STALL_LIMIT``); ``chunked``:
    send the body with ``Transfer-Encoding: chunked`` (HTTP/1.1 clients only). ``sent`` is
    called as the reply's body goes out (not for a stalled one)."""

    status: int
    body: bytes
    content_type: str
    outcome: str
    video_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    stall: bool = False
    chunked: bool = False
    sent: Callable[[], None] | None = None


def _cookies(header: str | None) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Headers and body go out as separate TLS records: without TCP_NODELAY, Nagle plus the
    # client's delayed ACK add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: TLSServer

    def handle(self) -> None:
        self.connection.settimeout(HANDSHAKE_TIMEOUT)
        try:
            self.connection.do_handshake()
        except OSError as error:
            logger.debug("TLS handshake with %s failed: %s", self.client_address[0], error)
            return
        self.connection.settimeout(IDLE_TIMEOUT)
        super().handle()

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            self.send_error(413)
            return
        self._serve(self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query={name: values[0] for name, values in parse_qs(url.query).items()},
            host=(self.headers.get("Host") or "").split(":")[0].lower(),
            client_ip=self.client_address[0],
            cookies=_cookies(self.headers.get("Cookie")),
            content_type=self.headers.get("Content-Type") or "",
            body=body,
            accept_encoding=self.headers.get("Accept-Encoding") or "",
        )
        reply = self.server.answer(request)
        stopping = self.server.stopping
        if reply.stall:
            stopping.wait(STALL_LIMIT)
            self.close_connection = True
            return
        if reply.delay and stopping.wait(reply.delay):
            self.close_connection = True
            return
        chunked = reply.chunked and self.request_version == "HTTP/1.1"
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        # Stamped as the body goes out: stamped after it, a fast client could read the whole
        # answer (and a test the log) before the stamp.
        if reply.sent is not None:
            reply.sent()
        self.wfile.write(chunked_body(reply.body) if chunked else reply.body)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)


def chunked_body(body: bytes, size: int = CHUNK_SIZE) -> bytes:
    """``body`` in HTTP/1.1 chunked framing, ending with the empty last chunk (no trailers)."""
    chunks = (body[i : i + size] for i in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


class TLSServer(socketserver.TCPServer):
    """Serves ``answer(Request) -> Reply``; tracks live connections so that ``stop`` can end
    idle keep-alive and stalled ones instead of waiting for them. ``stopping`` wakes every
    delayed or stalled reply (which then closes unanswered)."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        answer: Callable[[Request], Reply],
        stopping: threading.Event,
    ) -> None:
        self.answer = answer
        self.stopping = stopping
        self._context = context
        self._live_lock = threading.Lock()
        self._live: dict[ssl.SSLSocket, threading.Thread] = {}
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[ssl.SSLSocket, tuple[str, int]]:
        sock, address = self.socket.accept()
        # The handshake runs in the connection's thread, so a silent client can't block accept.
        tls = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, address

    def process_request(  # type: ignore[override]
        self, request: ssl.SSLSocket, client_address: tuple[str, int]
    ) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"fake-youtube {client_address[0]}:{client_address[1]}",
            daemon=True,
        )
        with self._live_lock:
            self._live[request] = thread
        thread.start()

    def _serve_connection(self, request: ssl.SSLSocket, client_address: tuple[str, int]) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._live_lock:
                self._live.pop(request, None)
            self.shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("fake YouTube connection %s ended with an error", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> int:
        """Cut every live connection, wait up to ``timeout`` in total; return how many remain."""
        with self._live_lock:
            live = dict(self._live)
        for connection in live:
            try:
                # The plain-socket shutdown: wakes a thread blocked in an SSL read.
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in live.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(thread.is_alive() for thread in live.values())
