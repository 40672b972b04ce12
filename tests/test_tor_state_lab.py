"""What the client changes in tor (conflux) is put back exactly, by its close, by the next run
or by ``doctor --fix`` after a SIGKILL, and a conflux that tor's own configuration turned off is
never touched. Real tor processes on the lab, a real child process killed with SIGKILL."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stem.control import Controller

from tests.conftest import LAB_PASSWORD
from tests.test_cli import run_cli
from yt_study_buddy import RotatingTorClient
from yt_study_buddy.app import _doctor as doctor
from yt_study_buddy.app._doctor import Check, run_checks
from yt_study_buddy.testing.fake_youtube import Behavior
from yt_study_buddy.tor._changes import TorChanges
from yt_study_buddy.tor._endpoint import TorEndpoint
from yt_study_buddy.tor._launcher import launch_tor

pytestmark = pytest.mark.lab

IP_CHECK_URL = "https://check.torproject.org/api/ip"
READY_WAIT = 90.0


def conflux(controller: Controller) -> tuple[str, bool]:
    """tor's own answer, not stem's cache: GETCONF, and whether a ConfluxEnabled line is set
    (tor's config-text lists only options that differ from their defaults)."""
    reply = str(controller.msg("GETCONF ConfluxEnabled"))
    explicit = any(line.startswith("ConfluxEnabled ") for line in controller.get_info("config-text").splitlines())
    return reply, explicit


def put_back(controller: Controller, state: tuple[str, bool]) -> None:
    value = state[0].split("=", 1)[1]
    if state[1]:
        controller.set_conf("ConfluxEnabled", value)
    else:
        controller.reset_conf("ConfluxEnabled")


@pytest.fixture
def lab_tor(lab) -> Iterator[Controller]:
    """A separate controller on the session lab's client; its conflux setting is put back after
    the test, even on failure (the lab is shared by every test)."""
    controller = lab.controller()
    before = conflux(controller)
    try:
        yield controller
    finally:
        put_back(controller, before)
        controller.close()


def client_on(endpoint: TorEndpoint, state: Path, **options) -> RotatingTorClient:
    return RotatingTorClient(endpoint=endpoint, ledger_path=state / "exit-ledger.sqlite3", **options)


def conflux_check(endpoint: TorEndpoint, fake_youtube, state: Path, *, fix: bool = False) -> Check:
    checks = run_checks(
        endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path), fix=fix, state_dir=state
    )
    return next(check for check in checks if check.name == doctor.CONFLUX)


def wait_until(condition, what: str, process: subprocess.Popen[str], timeout: float = READY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the child ended before {what}: {process.communicate(timeout=10)}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.1)


def kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()  # SIGKILL: nothing of the child's cleanup runs
    process.communicate(timeout=10)


@pytest.mark.parametrize("setting", [None, "1"], ids=["default", "explicit-1"])
def test_conflux_is_off_while_a_client_runs_and_put_back_exactly(lab, lab_tor, tmp_path, setting):
    if setting is None:
        lab_tor.reset_conf("ConfluxEnabled")
    else:
        lab_tor.set_conf("ConfluxEnabled", setting)
    before = conflux(lab_tor)
    assert before == (("ConfluxEnabled=auto", False) if setting is None else ("ConfluxEnabled=1", True))
    changes = TorChanges(tmp_path / "tor-changes.sqlite3")
    with client_on(lab.endpoint, tmp_path):
        assert conflux(lab_tor) == ("ConfluxEnabled=0", True)
        [change] = changes.records()  # recorded for a crash, without secrets
        assert (change.setting, change.ours, change.was_default) == ("ConfluxEnabled", "0", setting is None)
        assert change.original == (setting or "auto")
        assert LAB_PASSWORD.encode() not in (tmp_path / "tor-changes.sqlite3").read_bytes()
    assert conflux(lab_tor) == before
    assert changes.records() == []


def test_two_clients_on_one_tor_the_last_to_close_puts_conflux_back(lab, lab_tor, tmp_path):
    before = conflux(lab_tor)
    assert before[0] != "ConfluxEnabled=0"
    first = client_on(lab.endpoint, tmp_path)
    second = client_on(lab.endpoint, tmp_path)
    try:
        first.close()
        assert conflux(lab_tor) == ("ConfluxEnabled=0", True)  # the second still runs
    finally:
        second.close()
    assert conflux(lab_tor) == before
    assert TorChanges(tmp_path / "tor-changes.sqlite3").records() == []


def start_crashing_fetch(lab, fake_youtube, state: Path, output: Path) -> subprocess.Popen[str]:
    """A real ``yt-study-buddy fetch`` whose video stalls, once it has turned conflux off and
    reached the fake YouTube: killing it then is a crash in the middle of a run."""
    video = "crashrunxxx"
    fake_youtube.script(Behavior.STALL, video_id=video)
    endpoint = lab.endpoint
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yt_study_buddy",
            "fetch",
            video,
            "--no-launch-tor",
            "--state-dir",
            str(state),
            "--output",
            str(output),
            "--ca-bundle",
            str(fake_youtube.ca_path),
            "--tor-password",
            LAB_PASSWORD,
            "--tor-control",
            f"{endpoint.control_host}:{endpoint.control_port}",
            "--tor-socks",
            f"{endpoint.socks_host}:{endpoint.socks_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    changes = state / "tor-changes.sqlite3"
    wait_until(
        lambda: (
            changes.exists()
            and [c.holder_pid for c in TorChanges(changes).records()] == [process.pid]
            and fake_youtube.served(video_id=video)
        ),
        "recorded change and stalled request",
        process,
    )
    return process


def test_doctor_reports_and_fix_puts_back_what_a_killed_run_left(lab, lab_tor, fake_youtube, tmp_path):
    before = conflux(lab_tor)
    assert before == ("ConfluxEnabled=auto", False)  # the lab's client: conflux at tor's default
    state = tmp_path / "state"
    fetch = start_crashing_fetch(lab, fake_youtube, state, tmp_path / "notes")
    try:
        assert conflux_check(lab.endpoint, fake_youtube, state).detail == (
            f"ConfluxEnabled 0 while a yt-study-buddy run works (pid {fetch.pid}); it is put back when the run ends"
        )
    finally:
        kill(fetch)
    assert conflux(lab_tor) == ("ConfluxEnabled=0", True)  # the crash left it off

    report = conflux_check(lab.endpoint, fake_youtube, state)
    assert not report.ok and not report.skipped
    assert report.detail == (
        f"ConfluxEnabled 0 was left by a yt-study-buddy run that died (pid {fetch.pid}); it was tor's default (auto)"
    )
    assert report.fix is not None and report.fix.startswith("yt-study-buddy doctor --fix puts it back")
    assert conflux(lab_tor) == ("ConfluxEnabled=0", True)  # reporting changes nothing

    endpoint = lab.endpoint
    fixed = run_cli(
        "doctor",
        "--fix",
        "--state-dir",
        str(state),
        "--ca-bundle",
        str(fake_youtube.ca_path),
        "--tor-password",
        LAB_PASSWORD,
        "--tor-control",
        f"{endpoint.control_host}:{endpoint.control_port}",
        "--tor-socks",
        f"{endpoint.socks_host}:{endpoint.socks_port}",
    )
    line = next(line for line in fixed.stdout.splitlines() if " conflux " in line)
    assert line.split(None, 2)[2] == (
        f"ConfluxEnabled 0 was left by a run that died (pid {fetch.pid}): put back to tor's default (auto) (--fix)"
    )
    assert line.startswith("✓ ")
    assert conflux(lab_tor) == before
    assert TorChanges(state / "tor-changes.sqlite3").records() == []
    assert conflux_check(lab.endpoint, fake_youtube, state).detail == (
        "ConfluxEnabled auto (yt-study-buddy turns it off while it runs)"
    )


def test_the_next_run_puts_back_what_a_killed_run_left(lab, lab_tor, fake_youtube, tmp_path):
    lab_tor.set_conf("ConfluxEnabled", "1")
    state = tmp_path / "state"
    kill(start_crashing_fetch(lab, fake_youtube, state, tmp_path / "notes"))
    assert conflux(lab_tor) == ("ConfluxEnabled=0", True)
    with client_on(lab.endpoint, state):  # finds conflux 0 and the dead run's record: takes it over
        [change] = TorChanges(state / "tor-changes.sqlite3").records()
        assert change.original == "1" and not change.was_default
    assert conflux(lab_tor) == ("ConfluxEnabled=1", True)
    assert TorChanges(state / "tor-changes.sqlite3").records() == []


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


HOLD_A_CLIENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from yt_study_buddy import RotatingTorClient, TorEndpoint
    endpoint = TorEndpoint(socks_port=int(sys.argv[1]), control_port=int(sys.argv[2]))
    client = RotatingTorClient(endpoint=endpoint, ledger_path=Path(sys.argv[3]) / "exit-ledger.sqlite3")
    print("READY", flush=True)
    time.sleep(300)
    """
)


def test_conflux_0_of_tors_own_configuration_is_never_touched(lab, fake_youtube, tmp_path):
    """A tor we launch has ConfluxEnabled 0 in its torrc: no client records or restores it, and
    the record a killed run left on an earlier tor on the same port does not apply to it."""
    socks, control = free_ports(2)
    state = tmp_path / "state"
    changes = TorChanges(state / "tor-changes.sqlite3")
    options = {
        "data_dir": tmp_path / "tor",
        "socks_port": socks,
        "control_port": control,
        "extra_config": lab.client_config(),
        "timeout": 90,
    }
    with launch_tor(**options) as first:
        assert conflux(first.controller) == ("ConfluxEnabled=0", True)
        with client_on(first.endpoint, state):
            assert changes.records() == []
        assert conflux(first.controller) == ("ConfluxEnabled=0", True)
        # A run killed on this tor after someone had turned conflux on: its record stays behind.
        first.controller.set_conf("ConfluxEnabled", "1")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_A_CLIENT, str(socks), str(control), str(state)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: [c.holder_pid for c in changes.records()] == [holder.pid], "recorded change", holder)
        finally:
            kill(holder)
        assert conflux(first.controller) == ("ConfluxEnabled=0", True)
        [left] = changes.records()
    with launch_tor(**options) as second:  # tor restarted on the same port, conflux 0 by its torrc
        check = conflux_check(second.endpoint, fake_youtube, state, fix=True)
        assert check.ok and check.detail == "ConfluxEnabled 0 by tor's own configuration"
        assert conflux(second.controller) == ("ConfluxEnabled=0", True)
    assert changes.records() == []  # --fix forgot the record of the earlier tor
    assert left.holder_pid == holder.pid and left.original == "1"
