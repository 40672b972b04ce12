"""No byte outside the configured tor, shown on real connections through the private Tor network.

Each fetch runs as a real process in a hostile setting: every proxy variable points at a
recording listener (or ``NO_PROXY=*`` invites direct connections), and a private mount namespace
sends every local name lookup to a recording DNS server that answers YouTube's names with the
fake YouTube's address, so a leak would not fail but connect. The fetch must reach neither
recorder, and the fake YouTube must see every request from one of the lab's exits. A positive
control in the very same setting first shows that each recorder does catch what it should.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LAB_PASSWORD
from yt_study_buddy.testing.fake_youtube import HOSTNAMES
from yt_study_buddy.testing.recorders import ConnectionRecorder, DNSRecorder, resolver_jail_argv

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the resolver jail needs root for its mount namespace"),
]

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
#: Names whose local lookup would be a leak: YouTube's, and the exit check's echo service.
LEAKY_DOMAINS = ("youtube.com", "youtu.be", "youtube-nocookie.com", "torproject.org")
ENVIRONMENTS = ("proxy_variables", "no_proxy")
RUN_TIMEOUT = 120.0

CONTROL = """
import json, socket, sys
import requests
resolved = sorted({info[4][0] for info in socket.getaddrinfo("www.youtube.com", 443, proto=socket.IPPROTO_TCP)})
try:  # an ordinary client in this environment: does it leave through the trap, or go direct?
    requests.get("https://www.youtube.com/oembed?url=x&format=json", verify=sys.argv[1], timeout=10)
    plain = "ok"
except requests.RequestException as exc:
    plain = type(exc).__name__
print(json.dumps({"resolved": resolved, "plain": plain}))
"""

LIBRARY = """
import json, sys
from pathlib import Path
from yt_study_buddy import RotatingTorClient, TorEndpoint, TorIPQueue, TorTranscriptFetcher
password, ledger, ca, video_id = sys.argv[1:]
with RotatingTorClient(endpoint=TorEndpoint(control_password=password), ledger_path=Path(ledger),
                       ca_bundle=ca) as client, TorIPQueue(client, target_size=1) as queue:
    exit_ip, session, proxies = queue.get_next_connection(worker_id=1, timeout=60)
    with session:
        transcript = TorTranscriptFetcher(session=session, proxies=proxies, exit_ip=exit_ip).fetch_transcript(video_id)
        used = session.exits_used()
print(json.dumps({"exit_ip": exit_ip, "exits_used": used, "snippets": len(transcript.snippets)}))
"""


@pytest.fixture
def proxy_trap():
    with ConnectionRecorder("127.0.0.2") as trap:
        yield trap


@pytest.fixture
def dns_trap(fake_youtube):
    names = [name for name in HOSTNAMES if name not in ("localhost", "127.0.0.1")]
    with DNSRecorder("127.0.0.53", answers=dict.fromkeys(names, fake_youtube.host)) as trap:
        yield trap


class Hostile:
    """Runs commands in the resolver jail with one of the hostile environments."""

    def __init__(self, kind: str, tmp_path: Path, proxy_trap: ConnectionRecorder, dns_trap: DNSRecorder) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.dns = dns_trap
        self.proxy = proxy_trap
        if kind == "proxy_variables":
            self.env = {name: proxy_trap.url("http") for name in PROXY_VARIABLES}
            self.env["ALL_PROXY"] = self.env["all_proxy"] = proxy_trap.url("socks5h")
        else:
            self.env = dict.fromkeys(NO_PROXY_VARIABLES, "*")

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("YTSB_") and key not in PROXY_VARIABLES + NO_PROXY_VARIABLES
        }
        jailed = resolver_jail_argv(argv, self.dns.host, self.tmp_path / "resolver")
        # unshare and sh exec the command: killing this PID ends it. A timeout is returned, not
        # raised, so the recorders are still checked first.
        with subprocess.Popen(
            jailed, env={**inherited, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            try:
                out, err = process.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                err += f"\n(killed after {RUN_TIMEOUT} s)"
        return subprocess.CompletedProcess(jailed, process.returncode, out, err)


@pytest.fixture(params=ENVIRONMENTS)
def hostile(request, lab, fake_youtube, proxy_trap, dns_trap, tmp_path) -> Hostile:
    """The hostile setting, after its positive control passed; recorders and the fake's log
    are cleared for the fetch."""
    setting = Hostile(request.param, tmp_path, proxy_trap, dns_trap)
    done = setting.run(sys.executable, "-c", CONTROL, str(fake_youtube.ca_path))
    assert done.returncode == 0, done.stderr
    control = json.loads(done.stdout)
    # A local lookup of a YouTube name is recorded (and answered with the fake's address) ...
    assert control["resolved"] == [fake_youtube.host]
    assert [q.name for q in dns_trap.asked(["youtube.com"])][:1] == ["www.youtube.com"]
    if setting.kind == "proxy_variables":  # ... the variables do send an ordinary client to the trap ...
        assert control["plain"] != "ok"
        assert [c.first_bytes.split(b" ")[:2] for c in proxy_trap.connections] == [[b"CONNECT", b"www.youtube.com:443"]]
        assert fake_youtube.requests == []
    else:  # ... or straight to the fake, which logs it from an address that is no exit.
        assert control["plain"] == "ok" and proxy_trap.connections == []
        assert {r.client_ip for r in fake_youtube.requests} == {"127.0.0.1"}
        assert "127.0.0.1" not in lab.exit_ips
    proxy_trap.clear()
    dns_trap.clear()
    fake_youtube.reset()
    return setting


def assert_nothing_leaked(setting: Hostile, lab, fake_youtube) -> None:
    """Checked before the fetch's own outcome: a leak is the finding, whatever else failed."""
    assert setting.proxy.connections == [], "a connection reached the proxy variables' listener"
    assert setting.dns.asked(LEAKY_DOMAINS) == [], "a YouTube or echo name was resolved locally"
    assert setting.dns.queries == [], "a name was resolved locally"
    assert {r.client_ip for r in fake_youtube.requests} <= set(lab.exit_ips), "the fake saw a request from no exit"


def assert_fetched_through_the_lab(lab, fake_youtube, video_id: str) -> None:
    served = fake_youtube.requests
    assert fake_youtube.served(video_id=video_id) and any(r.path == "/api/ip" for r in served)
    assert {r.client_ip for r in served} <= set(lab.exit_ips)


def test_the_library_fetches_only_through_the_lab(hostile, lab, fake_youtube, tmp_path):
    done = hostile.run(
        sys.executable,
        "-c",
        LIBRARY,
        LAB_PASSWORD,
        str(tmp_path / "ledger.sqlite3"),
        str(fake_youtube.ca_path),
        "egressLib01",
    )
    assert_nothing_leaked(hostile, lab, fake_youtube)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["snippets"] > 0 and result["exits_used"] == [result["exit_ip"]]
    assert_fetched_through_the_lab(lab, fake_youtube, "egressLib01")
    assert fake_youtube.exits_seen("egressLib01") == [result["exit_ip"]]


def test_the_cli_fetches_only_through_the_lab(hostile, lab, fake_youtube, tmp_path):
    notes = tmp_path / "notes"
    done = hostile.run(
        sys.executable,
        "-m",
        "yt_study_buddy",
        "https://youtu.be/egressCli01",
        "--tor-control",
        "127.0.0.1:9051",
        "--tor-socks",
        "127.0.0.1:9050",
        "--tor-password",
        LAB_PASSWORD,
        "--no-launch-tor",
        "--ca-bundle",
        str(fake_youtube.ca_path),
        "--state-dir",
        str(tmp_path / "state"),
        "--output",
        str(notes),
    )
    assert_nothing_leaked(hostile, lab, fake_youtube)
    assert done.returncode == 0, done.stderr
    assert [path.name for path in notes.glob("*[[]egressCli01].md")]
    assert_fetched_through_the_lab(lab, fake_youtube, "egressCli01")
