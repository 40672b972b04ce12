"""Traps for egress tests: a TCP listener and a DNS server that record whatever reaches them,
and a jail in which every local name lookup can only reach such a DNS server.

A test points a would-be leak (a proxy variable, the resolver) at a recorder and then shows, on
real sockets, that nothing arrived; a positive control in the same setup shows the trap works.
"""

from __future__ import annotations

import selectors
import shutil
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

_POLL = 0.1
#: How long a recorder waits for a connection's first bytes (diagnostics only).
_READ_TIMEOUT = 0.5


@dataclass(frozen=True)
class Accepted:
    """One connection a ``ConnectionRecorder`` accepted, and the first bytes it sent."""

    peer: tuple[str, int]
    first_bytes: bytes


@dataclass(frozen=True)
class DNSQuery:
    """One question a ``DNSRecorder`` got; ``name`` is lower case without the final dot."""

    name: str
    rdtype: str
    transport: str
    peer: tuple[str, int]


class _Recorder:
    """A thread serving some listening sockets; ``_drain`` takes what waits on one of them.

    Reading the record drains every socket first, under the same lock the thread uses: a
    connection or datagram the kernel accepted but nobody read yet still counts, so an empty
    record is never a race with the serving thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []

    def _open(self) -> list[socket.socket]:
        raise NotImplementedError

    def _drain(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._sockets = self._open()
        for sock in self._sockets:
            sock.setblocking(False)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(5.0)
        self._drain_all()  # what arrived last is still recorded
        for sock in self._sockets:
            sock.close()
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in self._sockets:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(_POLL):
                    with self._lock:
                        self._drain(key.fileobj)  # type: ignore[arg-type]

    def _drain_all(self) -> None:
        with self._lock:
            for sock in self._sockets:
                if sock.fileno() != -1:
                    self._drain(sock)


def _accept_all(listener: socket.socket, handle: Callable[[socket.socket, tuple[str, int]], None]) -> None:
    while True:
        try:
            conn, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            conn.settimeout(_READ_TIMEOUT)
            handle(conn, peer[:2])


class ConnectionRecorder(_Recorder):
    """A TCP listener on ``host`` that records every connection it accepts, then closes it
    unanswered. ``port=0`` picks a free port (``address`` after ``start``)."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        super().__init__()
        self._bind = (host, port)
        self._accepted: list[Accepted] = []

    @property
    def address(self) -> tuple[str, int]:
        if not self._sockets:
            raise RuntimeError("ConnectionRecorder is not running")
        host, port = self._sockets[0].getsockname()[:2]
        return host, port

    def url(self, scheme: str = "http") -> str:
        host, port = self.address
        return f"{scheme}://{host}:{port}"

    @property
    def connections(self) -> list[Accepted]:
        """Every connection so far, including any still waiting to be accepted."""
        self._drain_all()
        with self._lock:
            return list(self._accepted)

    def clear(self) -> None:
        self._drain_all()
        with self._lock:
            self._accepted.clear()

    def _open(self) -> list[socket.socket]:
        listener = socket.create_server(self._bind, backlog=64)
        return [listener]

    def _drain(self, sock: socket.socket) -> None:
        _accept_all(sock, self._record)

    def _record(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            data = conn.recv(512)
        except OSError:
            data = b""
        self._accepted.append(Accepted(peer, data))


class DNSRecorder(_Recorder):
    """A DNS server on UDP and TCP ``host:port`` that records every question.

    A name in ``answers`` gets that IPv4 address (no AAAA), so a client that resolves it could
    really connect; any other name gets NXDOMAIN at once, so no lookup waits for a timeout.
    """

    def __init__(self, host: str = "127.0.0.53", port: int = 53, answers: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._bind = (host, port)
        self._answers = {name.lower().rstrip("."): ip for name, ip in (answers or {}).items()}
        self._queries: list[DNSQuery] = []

    @property
    def host(self) -> str:
        return self._bind[0]

    @property
    def queries(self) -> list[DNSQuery]:
        """Every question so far, including datagrams and connections not read yet."""
        self._drain_all()
        with self._lock:
            return list(self._queries)

    def asked(self, domains: Iterable[str]) -> list[DNSQuery]:
        """The questions about these names or names under them (``youtube.com`` covers
        ``www.youtube.com``, and the resolver's search-domain forms such as ``youtube.com.lan``)."""
        wanted = [domain.lower().rstrip(".") for domain in domains]
        return [
            q
            for q in self.queries
            if any(q.name == d or q.name.endswith("." + d) or q.name.startswith(d + ".") for d in wanted)
        ]

    def clear(self) -> None:
        self._drain_all()
        with self._lock:
            self._queries.clear()

    def _open(self) -> list[socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(self._bind)
        tcp = socket.create_server(self._bind, backlog=64)
        return [udp, tcp]

    def _drain(self, sock: socket.socket) -> None:
        if sock.type == socket.SOCK_STREAM:
            _accept_all(sock, self._serve_tcp)
            return
        while True:
            try:
                wire, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            reply = self._answer(wire, "udp", peer[:2])
            if reply is not None:
                sock.sendto(reply, peer)

    def _serve_tcp(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        answered = False
        while True:  # length-prefixed messages until the client closes
            try:
                head = conn.recv(2, socket.MSG_WAITALL)
                wire = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL) if len(head) == 2 else b""
            except OSError:
                wire = b""
            if not wire:
                break
            answered = True
            reply = self._answer(wire, "tcp", peer)
            if reply is not None:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        if not answered:  # a connection that never asked still came here
            self._queries.append(DNSQuery("", "", "tcp", peer))

    def _answer(self, wire: bytes, transport: str, peer: tuple[str, int]) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            self._queries.append(DNSQuery("<unparsable>", "", transport, peer))
            return None
        response = dns.message.make_response(query)
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            self._queries.append(DNSQuery(name, dns.rdatatype.to_text(question.rdtype), transport, peer))
            address = self._answers.get(name)
            if address is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
        return response.to_wire()


# Binds the three files over the system's, then runs the command given after them.
_RESOLVER_JAIL = (
    'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && '
    'mount --bind "$3" /etc/nsswitch.conf && '
    # nscd would answer from outside this namespace's files: hide its socket if there is one.
    'for d in /run/nscd /var/run/nscd; do [ ! -d "$d" ] || mount -t tmpfs none "$d" || exit 1; done && '
    'shift 3 && exec "$@"'
)


def resolver_jail_argv(argv: Sequence[str], nameserver: str, workdir: Path) -> list[str]:
    """``argv`` in a private mount namespace where a local name lookup can only reach the DNS
    server at ``nameserver`` port 53: /etc/hosts lists localhost alone, nsswitch.conf says
    ``files dns`` and resolv.conf names that server only. Needs root (a mount namespace)."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        raise RuntimeError("the resolver jail needs unshare and mount (util-linux)")
    workdir.mkdir(parents=True, exist_ok=True)
    files = {
        "resolv.conf": f"nameserver {nameserver}\noptions timeout:1 attempts:1\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "nsswitch.conf": "hosts: files dns\n",
    }
    for name, text in files.items():
        (workdir / name).write_text(text)
    paths = [str(workdir / name) for name in files]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _RESOLVER_JAIL,
        "resolver-jail",
        *paths,
        *argv,
    ]
