"""launch_tor: real tor processes in the private lab network (never the public Tor network)."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from yt_study_buddy._exceptions import TorUnavailable
from yt_study_buddy.app._hints import with_cli_hints
from yt_study_buddy.testing.netns import require_loopback_only
from yt_study_buddy.tor._control import open_controller
from yt_study_buddy.tor._exit_check import check_exit_ip
from yt_study_buddy.tor._launcher import _Progress, launch_tor
from yt_study_buddy.tor._session import TorSession

# Every launched tor gets these, so it can only ever talk to the lab's authorities.
_PRIVATE_NETWORK = {"TestingTorNetwork": "1", "UseDefaultFallbackDirs": "0"}
# An authority nothing answers for: a tor with only this never bootstraps.
_DEAD_AUTHORITY = f"placeholder orport=1 no-v2 v3ident={'A' * 40} 127.0.1.1:1 {'A' * 40}"


def gone(pid: int) -> bool:
    """The process has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_no_tor_binary_says_how_to_install(tmp_path):
    with pytest.raises(TorUnavailable) as info:
        launch_tor(tor_cmd=str(tmp_path / "no-such-tor"), data_dir=tmp_path / "data")
    message = str(info.value)
    assert message.startswith(f"no tor binary found at {tmp_path / 'no-such-tor'}: install tor")
    assert "sudo apt install tor" in message and "brew install tor" in message
    assert "--tor-control" in with_cli_hints(message)  # the Tor layer says it in words, the CLI as its option
    assert not (tmp_path / "data").exists()


def test_unusable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # /bin/false stands in for tor: should the check ever be skipped, nothing could start.
    with pytest.raises(TorUnavailable, match=r"cannot use .*a-file/tor as tor's data directory \(Not a directory\)"):
        launch_tor(tor_cmd="/bin/false", data_dir=blocker / "tor")


@pytest.mark.lab
def test_launched_tor_reaches_an_exit_and_stops(lab, fake_youtube, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="yt_study_buddy.tor._launcher")
    with launch_tor(data_dir=tmp_path / "tor", extra_config=lab.client_config(), timeout=90) as tor:
        endpoint = tor.endpoint
        assert endpoint.control_password is None  # cookie authentication
        assert (endpoint.socks_port, endpoint.control_port) != (lab.endpoint.socks_port, lab.endpoint.control_port)
        assert tor.controller.get_conf("ConfluxEnabled") == "0"
        # A second controller (cookie auth, found through PROTOCOLINFO) may be closed freely.
        other = open_controller(endpoint)
        other.close()
        with TorSession(endpoint, username="launcher-test", ca_bundle=str(fake_youtube.ca_path)) as session:
            ip = check_exit_ip(session, "https://check.torproject.org/api/ip")
        assert ip in lab.exit_ips
        assert tor.process.poll() is None
        pid = tor.pid
    # Its bootstrap progress was shown as it went, at INFO (what the CLI shows by default).
    progress = [r for r in caplog.records if r.getMessage().startswith("tor: Bootstrapped")]
    assert progress and all(r.levelno == logging.INFO for r in progress)
    assert all(re.fullmatch(r"tor: Bootstrapped \d+ % \([\w-]+\): .+", r.getMessage()) for r in progress)
    percents = [int(r.getMessage().split()[2]) for r in progress]
    assert percents == sorted(set(percents)) and percents[-1] == 100, percents
    assert progress[-1].getMessage() == "tor: Bootstrapped 100 % (done): Done"
    # Owned (and asked for its first circuit) as it began to bootstrap, not once it had.
    messages = [r.getMessage() for r in caplog.records]
    owned = next(i for i, m in enumerate(messages) if m.startswith("launched tor (pid"))
    assert owned < messages.index("tor: Bootstrapped 100 % (done): Done"), messages
    assert tor.process.poll() is not None
    assert gone(pid)
    tor.stop()  # idempotent


@pytest.mark.lab
def test_bootstrap_timeout_kills_tor_from_a_worker_thread(tmp_path):
    require_loopback_only()
    config = {**_PRIVATE_NETWORK, "DirAuthority": [_DEAD_AUTHORITY]}
    # A worker thread: stem's own timeout (SIGALRM) would refuse to work here.
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(launch_tor, data_dir=tmp_path / "tor", extra_config=config, timeout=3)
        with pytest.raises(TorUnavailable) as info:
            future.result(timeout=60)  # a bound for the test only: the watchdog ends it at 3 s
    message = str(info.value)  # the watchdog's words, with tor's log up to its bootstrap attempt
    assert message.startswith("tor did not bootstrap in time (limit 3 s); its last log lines:")
    assert "Bootstrapped" in message
    pid = int((tmp_path / "tor" / "tor.pid").read_text())
    assert gone(pid)


def said(message: str) -> list[str]:
    """The lines a launch failure quotes from tor."""
    _header, *lines = message.splitlines()
    assert all(line.startswith("  ") for line in lines), message
    return [line.strip() for line in lines]


@pytest.mark.lab
def test_unknown_option_is_reported_in_tors_words(tmp_path):
    require_loopback_only()
    config = {**_PRIVATE_NETWORK, "DirAuthority": [_DEAD_AUTHORITY], "NoSuchOption": "1"}
    with pytest.raises(TorUnavailable) as info:
        launch_tor(data_dir=tmp_path / "tor", extra_config=config, timeout=60)
    message = str(info.value)
    assert message.startswith("tor exited with status 1 before bootstrapping; it said:\n"), message
    lines = said(message)
    assert "[warn] Failed to parse/validate config: Unknown option 'NoSuchOption'.  Failing." in lines
    assert all(line.startswith(("[warn] ", "[err] ")) for line in lines), message  # no timestamps, no chatter


@pytest.mark.lab
@pytest.mark.parametrize("taken", ["socks_port", "control_port"])
def test_a_taken_port_is_reported_in_tors_words(tmp_path, taken):
    require_loopback_only()
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        config = {**_PRIVATE_NETWORK, "DirAuthority": [_DEAD_AUTHORITY]}
        with pytest.raises(TorUnavailable) as info:
            launch_tor(data_dir=tmp_path / "tor", extra_config=config, timeout=60, **{taken: port})
    message = str(info.value)
    assert message.startswith("tor exited with status 1 before bootstrapping; it said:\n"), message
    lines = said(message)
    assert f"[warn] Could not bind to 127.0.0.1:{port}: Address already in use. Is Tor already running?" in lines
    assert all(line.startswith(("[warn] ", "[err] ")) for line in lines), message


@pytest.mark.lab
def test_what_tor_says_on_stderr_is_reported(tmp_path):
    # A wrapper in front of tor (as a packaging or guard script may be) that sends all it says to stderr.
    require_loopback_only()
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "tor"
    wrapper.write_text(f'#!/bin/sh\nPATH={shlex.quote(os.environ["PATH"])} exec tor "$@" >&2\n')
    wrapper.chmod(0o755)
    config = {**_PRIVATE_NETWORK, "DirAuthority": [_DEAD_AUTHORITY], "NoSuchOption": "1"}
    with pytest.raises(TorUnavailable) as info:
        launch_tor(tor_cmd=str(wrapper), data_dir=tmp_path / "tor", extra_config=config, timeout=60)
    message = str(info.value)
    assert message.startswith("tor exited with status 1 before bootstrapping; it said:\n"), message
    assert "[warn] Failed to parse/validate config: Unknown option 'NoSuchOption'.  Failing." in said(message)


@pytest.mark.lab
def test_two_launches_on_one_data_dir_both_end_with_a_reason(tmp_path):
    # Two runs at once, each starting a tor in the same (default) data directory.
    require_loopback_only()
    config = {**_PRIVATE_NETWORK, "DirAuthority": [_DEAD_AUTHORITY]}
    data_dir = tmp_path / "tor"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(launch_tor, data_dir=data_dir, extra_config=config, timeout=30)
        pid = None
        try:
            for _ in range(300):  # bounded: 30 s
                if (data_dir / "tor.pid").is_file() and (text := (data_dir / "tor.pid").read_text().strip()):
                    pid = int(text)
                    break
                assert not first.done(), first.exception()
                time.sleep(0.1)
            assert pid is not None, "the first tor never wrote its PID file"
            with pytest.raises(TorUnavailable) as second:
                launch_tor(data_dir=data_dir, extra_config=config, timeout=60)
            assert "another Tor process is running with the same data directory" in str(second.value)
            # The first still ends at its own limit, though the second replaced its PID file.
            with pytest.raises(TorUnavailable, match=r"^tor did not bootstrap in time \(limit 30 s\)"):
                first.result(timeout=60)
            assert gone(pid)
        finally:
            if pid is not None and not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_progress_is_shown_as_it_moves_but_throttled(caplog):
    caplog.set_level(logging.INFO, logger="yt_study_buddy.tor._launcher")
    now = [0.0]
    progress = _Progress(interval=2.0, clock=lambda: now[0])

    def at(when: float, percent: int | None = None) -> float | None:
        now[0] = when
        if percent is None:
            return progress.flush()
        progress.update(percent, "tag", f"step {percent}")
        return None

    at(0.0, 0)  # the first line at once
    at(0.5, 5)  # held back...
    assert at(1.0) == pytest.approx(1.0)  # ...for another second
    assert at(2.0) is None  # shown when its time has come, though tor said nothing more
    at(2.1, 5)  # no news
    at(2.5, 10)  # held back, then replaced by a newer one
    at(3.0, 14)
    at(3.5, 100)  # done: at once
    assert at(9.0) is None
    shown = [r.getMessage() for r in caplog.records]
    assert shown == [
        "tor: Bootstrapped 0 % (tag): step 0",
        "tor: Bootstrapped 5 % (tag): step 5",
        "tor: Bootstrapped 100 % (tag): step 100",
    ]


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from yt_study_buddy.tor._launcher import launch_tor

    args = json.loads(sys.argv[1])
    tor = launch_tor(data_dir=Path(args["data_dir"]), extra_config=args["config"], timeout=90)
    print(tor.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.lab
def test_tor_dies_with_its_owner_even_on_sigkill(lab, tmp_path):
    args = json.dumps({"data_dir": str(tmp_path / "tor"), "config": lab.client_config()})
    with subprocess.Popen([sys.executable, "-c", _CHILD, args], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            tor_pid = int(child.stdout.readline())
            assert not gone(tor_pid)
        finally:
            os.kill(child.pid, signal.SIGKILL)
    assert wait_gone(tor_pid, 30)
