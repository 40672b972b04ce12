"""The private Tor network (TorLab): it refuses to run where traffic could leave, its exits show
their own IPs to a server, stem reports those same IPs, control auth works, and no tor outlives
the lab or its owning process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import stem
from stem.connection import authenticate_cookie
from stem.control import Controller

from yt_study_buddy.testing import netns, torrc
from yt_study_buddy.testing.network import TorLab
from yt_study_buddy.testing.processes import pids_mentioning
from yt_study_buddy.testing.torrc import Authority, Relay

HTTP_TIMEOUT = 30.0


def _tors_of(workdir: Path) -> list[int]:
    """PIDs of the tor processes whose torrc lies in ``workdir`` (not a launcher naming it)."""
    return pids_mentioning(f"{workdir}{os.sep}")


# -- the namespace check ---------------------------------------------------------------------


def test_loopback_only_means_exactly_lo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "if_nameindex", lambda: [(1, "lo")])
    assert netns.loopback_only()
    netns.require_loopback_only()
    monkeypatch.setattr(socket, "if_nameindex", lambda: [(1, "lo"), (2, "eth0")])
    assert not netns.loopback_only()
    with pytest.raises(RuntimeError, match="eth0.*loopback-only network namespace"):
        netns.require_loopback_only()


def test_lab_refuses_to_start_where_an_interface_besides_lo_exists(tmp_path: Path) -> None:
    """A real process in a namespace with a bridge that connects to nothing: start() refuses
    before it creates anything, so no tor ever runs there."""
    workdir = tmp_path / "lab"
    code = textwrap.dedent(
        """
        import sys
        from yt_study_buddy.testing.network import TorLab
        try:
            TorLab(exits=1, workdir=sys.argv[1]).start()
        except RuntimeError as exc:
            print("REFUSED", exc)
            sys.exit(3)
        """
    )
    argv = [sys.executable, "-c", code, str(workdir)]
    if netns.loopback_only():  # inside the test jail: a namespace with an empty bridge
        unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "-rn"]
        argv = [*unshare, "--", "sh", "-c", 'ip link add labbr0 type bridge && exec "$@"', "x", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "REFUSED" in done.stdout and "loopback-only network namespace" in done.stdout
    assert not workdir.exists()
    assert _tors_of(workdir) == []


def test_run_jailed_runs_the_command_with_only_lo_and_returns_its_status() -> None:
    """Outside a jail this creates a fresh namespace; inside one it runs the command as is."""
    check = "import socket, sys; sys.exit(7 if [n for _, n in socket.if_nameindex()] == ['lo'] else 1)"
    assert netns.run_jailed([sys.executable, "-c", check]) == 7


def test_every_torrc_names_only_private_authorities(tmp_path: Path) -> None:
    """Safety rule: even the throw-away key-generation torrc never falls back to public ones."""
    auth = Relay("auth0", "authority", torrc.RELAY_ADDRESS, 5000, 7000)
    exit0 = Relay("exit0", "exit", "127.0.0.11", 5200)
    authorities = [Authority(auth, "B" * 40, "C" * 40)]
    fps = {"auth0": "C" * 40, "exit0": "D" * 40}
    texts = [
        torrc.keygen_torrc(tmp_path, exit0, 1),
        torrc.relay_torrc(tmp_path, auth, authorities, fps, [auth, exit0], 1),
        torrc.relay_torrc(tmp_path, exit0, authorities, fps, [auth, exit0], 1),
        torrc.client_torrc(
            tmp_path, authorities, 1, socks_port=9050, control_port=9051, hashed_password=None,
            conflux=True, target_ip="127.0.0.1", mapped_hosts=["www.youtube.com"],
        ),
    ]  # fmt: skip
    for text in texts:
        assert "UseDefaultFallbackDirs 0" in text and "__OwningControllerProcess 1" in text
        directories = [
            line for line in text.splitlines() if line.startswith(("DirAuthority", "AlternateDir", "FallbackDir"))
        ]
        assert directories and all(" 127.0.1.1:" in line for line in directories)
    # The exit advertises the address it binds to, so stem reports what a server sees.
    assert "Address 127.0.0.11\nORPort 127.0.0.11:5200" in texts[2]
    assert "MapAddress www.youtube.com 127.0.0.1" in texts[3] and "ConfluxEnabled" not in texts[3]


def test_lab_rejects_a_target_that_a_relay_advertises() -> None:
    with pytest.raises(ValueError, match="exit enclave|relay's address"):
        TorLab(exits=2, target_ip="127.0.0.12")


# -- the running lab -------------------------------------------------------------------------


class _PeerEcho(BaseHTTPRequestHandler):
    """Answers every GET with the peer's IP: what a web server would see of the exit."""

    def do_GET(self) -> None:
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=ascii")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PeerEcho)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ip"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _seen_ip(lab: TorLab, username: str, url: str) -> str:
    with requests.Session() as session:
        session.trust_env = False
        proxy = lab.endpoint.socks_url(username, "x")
        response = session.get(url, proxies={"http": proxy}, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.content.decode("ascii")


@pytest.mark.lab
def test_usernames_reach_a_local_server_from_exit_ips_that_stem_reports(lab: TorLab, echo_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    seen = {f"{run}u{i}": _seen_ip(lab, f"{run}u{i}", echo_url) for i in range(16)}

    assert set(seen.values()) <= set(lab.exit_ips)  # never 127.0.0.1: the bind shim works
    assert len(set(seen.values())) >= 3, seen
    with lab.controller() as ctrl:
        circuits = ctrl.get_circuits()
        for username, ip in seen.items():
            exits = {c.path[-1][0] for c in circuits if c.socks_username == username}
            assert len(exits) == 1, (username, exits)
            fingerprint = exits.pop()
            assert lab.exit_fingerprints[fingerprint] == ip
            assert ctrl.get_network_status(fingerprint).address == ip


NO_EXITS = "The current consensus has no exit nodes"
HAS_EXITS = "The current consensus contains exit nodes"


def no_exit_windows(client_log: str) -> list[tuple[str, str | None]]:
    """(start, end) stamps of each time the client said its consensus has no exit nodes; end is
    None for a window still open."""
    windows: list[tuple[str, str | None]] = []
    began: str | None = None
    for line in client_log.splitlines():
        if NO_EXITS in line:
            began = began or line[:19]
        elif HAS_EXITS in line and began is not None:
            windows.append((began, line[:19]))
            began = None
    return windows + ([(began, None)] if began is not None else [])


def stale_exit_descriptors(ctrl: Controller) -> list[str]:
    """Exits whose descriptor, as the client's consensus names it, the client does not hold."""
    held = {desc.fingerprint: desc.digest() for desc in ctrl.get_server_descriptors([])}
    return [
        status.fingerprint for status in ctrl.get_network_statuses([])
        if stem.Flag.EXIT in status.flags and held.get(status.fingerprint) != status.digest
    ]  # fmt: skip


@pytest.mark.lab
def test_the_client_fetches_new_exit_descriptors_early(lab: TorLab) -> None:
    """Relays republish their descriptors while the lab is young; fetching them on tor's lazy
    schedule left the client without a usable exit for up to 54 s, and streams waited. How long
    the windows last is measured by ``python -m benchmarks.descriptors``; here: the setting that
    closes them is in force, the log shows windows as this tor words them (else the benchmark,
    and this check, would see none whatever happened), and the client holds the descriptor its
    consensus names for every exit."""
    with lab.controller() as ctrl:
        assert ctrl.get_conf("FetchDirInfoEarly") == "1" and ctrl.get_conf("FetchDirInfoExtraEarly") == "1"
        windows = no_exit_windows((lab.workdir / "client" / "notice.log").read_text())
        # Bootstrapping always makes one: the consensus comes before any descriptor.
        assert windows and windows[0][1] is not None, f"no closed {NO_EXITS!r} window in the log"
        deadline = time.monotonic() + 30
        while stale := stale_exit_descriptors(ctrl):
            assert time.monotonic() < deadline, f"the client never fetched the descriptors of {stale}"
            time.sleep(0.5)
        exits = [s for s in ctrl.get_network_statuses([]) if stem.Flag.EXIT in s.flags]
        assert len(exits) == len(lab.exit_ips)


@pytest.mark.lab
def test_cookie_auth_on_the_client_control_port(lab: TorLab) -> None:
    with Controller.from_port(port=lab.endpoint.control_port) as ctrl:
        authenticate_cookie(ctrl, str(lab.cookie_path))
        assert ctrl.get_info("status/bootstrap-phase").find("PROGRESS=100") >= 0


@pytest.mark.lab
def test_password_lab_authenticates_both_ways_and_stops_every_tor() -> None:
    password = "lab-" + uuid.uuid4().hex
    lab = TorLab(exits=2, control_password=password, socks_port=9150, control_port=9151, port_base=6000)
    with lab:
        workdir = lab.workdir
        assert lab.endpoint.control_password == password
        with Controller.from_port(port=9151) as ctrl:
            methods = set(ctrl.get_protocolinfo().auth_methods)
            assert {stem.connection.AuthMethod.PASSWORD, stem.connection.AuthMethod.COOKIE} <= methods
            ctrl.authenticate(password=password)
            assert ctrl.get_info("version").startswith("0.")
        with Controller.from_port(port=9151) as ctrl, pytest.raises(stem.connection.IncorrectPassword):
            stem.connection.authenticate_password(ctrl, "wrong")
        with Controller.from_port(port=9151) as ctrl:
            authenticate_cookie(ctrl, str(lab.cookie_path))
        with lab.controller() as ctrl:  # ours took ownership; this one must not end the client
            assert ctrl.get_conf("__OwningControllerProcess", None) != str(os.getpid())
        pids = lab.pids
        assert len(pids) == 3 + 3 + 2 + 1 and all(Path(f"/proc/{p}").exists() for p in pids.values())
    assert _tors_of(workdir) == []
    assert not any(Path(f"/proc/{p}").exists() for p in pids.values())
    assert not workdir.exists()


@pytest.mark.lab
@pytest.mark.timeout(240)  # a lab of its own (150 s allowed), then 45 s for its tors to go
def test_tor_processes_die_with_their_owner_after_sigkill(tmp_path: Path) -> None:
    workdir = tmp_path / "owned-lab"
    code = textwrap.dedent(
        """
        import sys, time
        from yt_study_buddy.testing.network import TorLab
        lab = TorLab(exits=2, workdir=sys.argv[1], socks_port=9250, control_port=9251, port_base=6500)
        lab.start(timeout=120)  # a young 2-exit network now and then needs another consensus round
        print("READY", flush=True)
        time.sleep(300)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", code, str(workdir)], stdout=subprocess.PIPE, text=True)
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(owner.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout=150)
        assert line == ["READY\n"], "the owned lab did not start"
        assert len(_tors_of(workdir)) == 3 + 3 + 2 + 1
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)
        owner.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 45
    while _tors_of(workdir) and time.monotonic() < deadline:
        time.sleep(0.5)
    survivors = _tors_of(workdir)
    for pid in survivors:  # a failure here must not leave its tors running after the session
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert survivors == []
