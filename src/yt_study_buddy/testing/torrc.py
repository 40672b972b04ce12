"""torrc text for the lab's nodes. Every line here answers a measured problem; "gotcha N" in the
comments is numbered as in docs/lab.md."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Authorities and middles advertise this, never the target's IP ("exit enclave", gotcha 2).
RELAY_ADDRESS = "127.0.1.1"

# "accept 127/8, reject the rest" written so a client sees PROBABLY_ACCEPTED (gotcha 3):
# reject the complement of 127/8 block by block, then accept *:*, which no IPv4 address reaches.
_EXIT_POLICY = (
    "ExitPolicyRejectPrivate 0",
    "ExitPolicy accept 127.0.0.0/8:*",
    "ExitPolicy reject 0.0.0.0/2:*,reject 64.0.0.0/3:*,reject 96.0.0.0/4:*,reject 112.0.0.0/5:*",
    "ExitPolicy reject 120.0.0.0/6:*,reject 124.0.0.0/7:*,reject 126.0.0.0/8:*,reject 128.0.0.0/1:*",
    "ExitPolicy accept *:*",
)


@dataclass(frozen=True)
class Relay:
    """One relay of the lab: role is "authority", "middle" or "exit"."""

    nick: str
    role: str
    address: str
    or_port: int
    dir_port: int | None = None


@dataclass(frozen=True)
class Authority:
    """What every torrc needs to know about an authority (its ``DirAuthority`` line)."""

    relay: Relay
    v3ident: str
    fingerprint: str

    def line(self) -> str:
        r = self.relay
        return (
            f"DirAuthority {r.nick} orport={r.or_port} no-v2 v3ident={self.v3ident} "
            f"{r.address}:{r.dir_port} {self.fingerprint}"
        )


# Key generation happens before any authority exists; this unreachable one keeps that tor off
# the public authorities (safety rule).
_PLACEHOLDER_AUTHORITY = f"DirAuthority placeholder orport=1 no-v2 v3ident={'A' * 40} {RELAY_ADDRESS}:1 {'A' * 40}"


def _common(workdir: Path, nick: str, authority_lines: Iterable[str], owner_pid: int) -> list[str]:
    data = workdir / nick
    return [
        "TestingTorNetwork 1",
        f"DataDirectory {data}",
        f"Nickname {nick}",
        "RunAsDaemon 0",
        f"Log notice file {data / 'notice.log'}",
        "SafeLogging 0",
        "LogTimeGranularity 1",
        "ShutdownWaitLength 0",
        "DisableDebuggerAttachment 0",
        f"ContactInfo {nick}@test.invalid",
        "UseDefaultFallbackDirs 0",
        *authority_lines,
        f"ServerDNSResolvConfFile {workdir / 'resolv.conf'}",
        "ServerDNSDetectHijacking 0",
        "ServerDNSTestAddresses",
        "ServerDNSAllowBrokenConfig 1",
        "AddressDisableIPv6 1",
        # An empty GeoIP file saves about 33 MB per process; nothing in the lab needs GeoIP.
        f"GeoIPFile {workdir / 'empty'}",
        f"GeoIPv6File {workdir / 'empty'}",
        # Every tor exits when the Python process that started it dies, even after kill -9.
        f"__OwningControllerProcess {owner_pid}",
    ]


def _relay_base(relay: Relay) -> list[str]:
    return [
        f"Address {relay.address}",
        f"ORPort {relay.address}:{relay.or_port}",
        "SocksPort 0",
        "AssumeReachable 1",
        "TestingMinExitFlagThreshold 0",
    ]


def keygen_torrc(workdir: Path, relay: Relay, owner_pid: int) -> str:
    """A throw-away torrc for ``tor --list-fingerprint``, which creates the relay's keys."""
    lines = _common(workdir, relay.nick, [_PLACEHOLDER_AUTHORITY], owner_pid) + _relay_base(relay)
    return "\n".join(lines) + "\n"


def relay_torrc(
    workdir: Path,
    relay: Relay,
    authorities: Sequence[Authority],
    fingerprints: dict[str, str],
    relays: Sequence[Relay],
    owner_pid: int,
) -> str:
    """The torrc of an authority, middle or exit; ``fingerprints`` maps every relay's nick."""
    lines = _common(workdir, relay.nick, [a.line() for a in authorities], owner_pid)
    lines += _relay_base(relay)
    if relay.role == "authority":

        def fps(*roles: str) -> str:
            return ",".join(f"${fingerprints[r.nick]}" for r in relays if r.role in roles)

        lines += [
            f"DirPort {relay.address}:{relay.dir_port}",
            "AuthoritativeDirectory 1",
            "V3AuthoritativeDirectory 1",
            "ExitRelay 0",
            "ExitPolicy reject *:*",
            # Fast voting (gotcha 11): intervals divide 30 min, delays sum below the interval.
            "TestingV3AuthInitialVotingInterval 5",
            "TestingV3AuthInitialVoteDelay 2",
            "TestingV3AuthInitialDistDelay 2",
            "V3AuthVotingInterval 10",
            "V3AuthVoteDelay 2",
            "V3AuthDistDelay 2",
            "V3AuthNIntervalsValid 2",
            f"TestingDirAuthVoteGuard {fps('authority', 'middle')}",
            "TestingDirAuthVoteGuardIsStrict 1",
            f"TestingDirAuthVoteExit {fps('exit')}",
            "TestingDirAuthVoteExitIsStrict 1",
            "TestingDirAuthVoteHSDir *",
            # Measured bandwidths keep path selection even (gotcha 6); they need 3 votes.
            f"V3BandwidthsFile {workdir / 'v3bw'}",
        ]
    elif relay.role == "middle":
        lines += ["DirCache 0", "ExitRelay 0", "ExitPolicy reject *:*"]  # gotcha 7
    else:
        lines += [
            "DirCache 0",
            "ExitRelay 1",
            "IPv6Exit 0",
            *_EXIT_POLICY,
            f"OutboundBindAddress {relay.address}",
            # Exits may still miss relays in their own first consensus (gotcha 5).
            "RefuseUnknownExits 0",
        ]
    return "\n".join(lines) + "\n"


def client_torrc(
    workdir: Path,
    authorities: Sequence[Authority],
    owner_pid: int,
    *,
    socks_port: int,
    control_port: int,
    hashed_password: str | None,
    conflux: bool,
    target_ip: str,
    mapped_hosts: Sequence[str],
) -> str:
    """The client: SOCKS and control on 127.0.0.1, the mapped host names routed to target_ip."""
    lines = _common(workdir, "client", [a.line() for a in authorities], owner_pid)
    lines += [
        f"SocksPort 127.0.0.1:{socks_port}",
        f"ControlPort 127.0.0.1:{control_port}",
        "CookieAuthentication 1",
        # Microdescriptor policy summaries hide the loopback exit policy (gotcha 4).
        "UseMicrodescriptors 0",
        # Young relays republish their descriptors (after the bandwidth self-test, ~20 s and
        # ~80 s after start). A client with full descriptors otherwise fetches the new ones on
        # its lazy 60 s schedule and meanwhile sees "no exit nodes", leaving new streams
        # unattached for up to 54 s (measured); fetching like a directory cache: <= 0.1 s.
        "FetchDirInfoEarly 1",
        "FetchDirInfoExtraEarly 1",
        *(f"MapAddress {host} {target_ip}" for host in mapped_hosts),
    ]
    if hashed_password is not None:
        lines.append(f"HashedControlPassword {hashed_password}")
    if not conflux:
        lines.append("ConfluxEnabled 0")
    return "\n".join(lines) + "\n"


def v3bw_text(fingerprints: Iterable[str], timestamp: int) -> str:
    """A bandwidth file giving every relay the same weight."""
    return f"{timestamp}\n" + "".join(f"node_id=${fp} bw=1000\n" for fp in fingerprints)
