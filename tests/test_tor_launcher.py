"""launch_tor: real tor processes in the private lab network (never the public Tor network)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from yt_study_buddy.errors import TorUnavailable
from yt_study_buddy.exit_check import check_exit_ip
from yt_study_buddy.testing.netns import require_loopback_only
from yt_study_buddy.tor_control import open_controller
from yt_study_buddy.tor_launcher import launch_tor
from yt_study_buddy.tor_session import TorSession

# Every launched tor gets these, so it can only ever talk to the lab's authorities.
_PRIVATE_NETWORK = {"TestingTorNetwork": "1", "UseDefaultFallbackDirs": "0"}
# An authority nothing answers for: a tor with only this never bootstraps.
_DEAD_AUTHORITY = f"placeholder orport=1 no-v2 v3ident={'A' * 40} 127.0.1.1:1 {'A' * 40}"


def lab_config(lab) -> dict[str, str | list[str]]:
    """The options that make a tor a client of ``lab`` (copied from the lab client's torrc)."""
    lines = (lab.workdir / "client" / "torrc").read_text().splitlines()
    authorities = [line.split(" ", 1)[1] for line in lines if line.startswith("DirAuthority ")]
    mapped = [line.split(" ", 1)[1] for line in lines if line.startswith("MapAddress ")]
    assert authorities, "the lab's client torrc has no DirAuthority lines"
    # UseMicrodescriptors 0: microdescriptor policy summaries hide the loopback exit policy.
    return {**_PRIVATE_NETWORK, "UseMicrodescriptors": "0", "DirAuthority": authorities, "MapAddress": mapped}


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
    assert "--tor-control" in message
    assert not (tmp_path / "data").exists()


def test_unusable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # /bin/false stands in for tor: should the check ever be skipped, nothing could start.
    with pytest.raises(TorUnavailable, match=r"cannot use .*a-file/tor as tor's data directory \(Not a directory\)"):
        launch_tor(tor_cmd="/bin/false", data_dir=blocker / "tor")


@pytest.mark.lab
def test_launched_tor_reaches_an_exit_and_stops(lab, fake_youtube, tmp_path):
    with launch_tor(data_dir=tmp_path / "tor", extra_config=lab_config(lab), timeout=90) as tor:
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


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from yt_study_buddy.tor_launcher import launch_tor

    args = json.loads(sys.argv[1])
    tor = launch_tor(data_dir=Path(args["data_dir"]), extra_config=args["config"], timeout=90)
    print(tor.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.lab
def test_tor_dies_with_its_owner_even_on_sigkill(lab, tmp_path):
    args = json.dumps({"data_dir": str(tmp_path / "tor"), "config": lab_config(lab)})
    with subprocess.Popen([sys.executable, "-c", _CHILD, args], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            tor_pid = int(child.stdout.readline())
            assert not gone(tor_pid)
        finally:
            os.kill(child.pid, signal.SIGKILL)
    assert wait_gone(tor_pid, 30)
