"""tor_control: every wait on tor's control port is bounded, even when tor stops answering.

The peer here is a small scripted control port on loopback: a real tor never stalls on cue.
"""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stem
from stem import Signal
from stem.control import EventType

from yt_study_buddy._exceptions import TorUnavailable
from yt_study_buddy.tor._control import open_controller
from yt_study_buddy.tor._endpoint import TorEndpoint

REPLIES = {
    "PROTOCOLINFO": '250-PROTOCOLINFO 1\r\n250-AUTH METHODS={methods}\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n',
    "AUTHENTICATE": "250 OK\r\n",
    "GETINFO version": "250-version=0.4.9.11\r\n250 OK\r\n",
    # What tor sends when it applies a NEWNYM to a controller that asked for SIGNAL events.
    "SIGNAL NEWNYM": "250 OK\r\n650 SIGNAL NEWNYM\r\n",
}


class ScriptedControlPort(socketserver.ThreadingTCPServer):
    """Answers like tor until a line starts with ``stall_on``; from then on it never answers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, stall_on: str, methods: str = "NULL") -> None:
        self.stall_on = stall_on
        self.methods = methods
        self.received: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    server: ScriptedControlPort

    def handle(self) -> None:
        stalled = False
        for raw in self.rfile:
            line = raw.decode().strip()
            self.server.received.append(line)
            stalled = stalled or line.startswith(self.server.stall_on)
            if not stalled:
                reply = next((text for start, text in REPLIES.items() if line.startswith(start)), "250 OK\r\n")
                self.wfile.write(reply.format(methods=self.server.methods).encode())


@pytest.fixture
def control_port(request: pytest.FixtureRequest) -> Iterator[ScriptedControlPort]:
    server = ScriptedControlPort(*request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def endpoint_of(server: ScriptedControlPort, password: str | None = None) -> TorEndpoint:
    return TorEndpoint(control_port=server.server_address[1], control_password=password)


# The peer never closes a stalled connection: only our watchdog ends these waits (the message says
# which bound fired), and a wait without one would hang until the test's timeout fails it.


@pytest.mark.timeout(30)
@pytest.mark.parametrize("control_port", [("PROTOCOLINFO",)], indirect=True)
def test_a_control_port_that_never_answers_is_a_clear_bounded_error(control_port):
    with pytest.raises(TorUnavailable, match=r"did not answer within 0\.5 s"):
        open_controller(endpoint_of(control_port), reply_timeout=0.5)
    assert set(control_port.received) == {"PROTOCOLINFO 1"}  # stem asks twice, then gives up


@pytest.mark.timeout(30)
@pytest.mark.parametrize("control_port", [("GETINFO traffic/read",)], indirect=True)
def test_a_reply_that_never_comes_closes_the_controller(control_port, caplog):
    controller = open_controller(endpoint_of(control_port), reply_timeout=0.5)
    try:
        with pytest.raises(stem.SocketClosed):
            controller.get_info("traffic/read")
        assert not controller.is_alive()
    finally:
        controller.close()
    assert "did not answer GETINFO within 0.5 s" in caplog.text


@pytest.mark.parametrize("control_port", [("AUTHENTICATE", "HASHEDPASSWORD")], indirect=True)
def test_a_stalled_authentication_never_logs_the_password(control_port, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TorUnavailable):
        open_controller(endpoint_of(control_port, password="s3cret-pw"), reply_timeout=0.5)
    assert "did not answer AUTHENTICATE within 0.5 s" in caplog.text
    assert "s3cret-pw" not in caplog.text


def watchdogs() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "tor-reply-watchdog"]


@pytest.mark.parametrize("control_port", [("never",)], indirect=True)
def test_one_watchdog_thread_bounds_every_command_and_stops_with_the_controller(control_port):
    before = len(watchdogs())
    controller = open_controller(endpoint_of(control_port), reply_timeout=5)
    try:
        for _ in range(20):
            controller.get_info("version", None)
            controller.msg("GETINFO traffic/read")
        assert len(watchdogs()) == before + 1
    finally:
        controller.close()
    deadline = time.monotonic() + 5  # it ends by itself once no command waits (close never joins it)
    while len(watchdogs()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(watchdogs()) == before
    assert controller.gave_up_on is None


@pytest.mark.timeout(30)
@pytest.mark.parametrize("control_port", [("never",)], indirect=True)
def test_one_dispatcher_asks_tor_once_per_event_type_and_fans_events_out(control_port, caplog):
    controller = open_controller(endpoint_of(control_port))
    opened = len(control_port.received)  # stem's own SETEVENTS (it follows SIGNAL itself) come before
    first: list[Any] = []
    second = threading.Event()

    def broken(event: Any) -> None:
        raise RuntimeError("a subscriber with a bug")

    try:
        controller.events.subscribe(EventType.SIGNAL, first.append)
        controller.events.subscribe(EventType.SIGNAL, broken)
        controller.events.subscribe(EventType.SIGNAL, lambda event: second.set())
        controller.signal(Signal.NEWNYM)
        assert second.wait(10), "the event did not reach the subscriber after a failing one"
        assert [event.signal for event in first] == [Signal.NEWNYM]
        assert "a SIGNAL event listener failed" in caplog.text

        asked = list(control_port.received)
        controller.events.unsubscribe(first.append)
        second.clear()
        controller.signal(Signal.NEWNYM)
        assert second.wait(10)
    finally:
        controller.close()
    asked_for_events = [line for line in control_port.received[opened:] if line.startswith("SETEVENTS")]
    assert len(asked_for_events) == 1 and "SIGNAL" in asked_for_events[0].split()
    assert control_port.received[len(asked) :] == ["SIGNAL NEWNYM"]  # unsubscribing asks tor nothing
    assert len(first) == 1
