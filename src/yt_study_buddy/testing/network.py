"""TorLab: a private Tor network of real tor processes on loopback, for tests and demos.

3 directory authorities, middles, exits with their own source IP each (127.0.0.11, .12, ...)
and one client whose SOCKS and control ports behave like a system tor's (what it takes:
docs/lab.md)."""

from __future__ import annotations

import http.client
import logging
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import stem
from stem.control import Controller

from ..tor._endpoint import TorEndpoint
from . import torrc
from .bindshim import ShimBuild
from .keys import prepare_keys
from .netns import require_loopback_only
from .processes import TorProcess, stop_all
from .torrc import Authority, Relay

log = logging.getLogger(__name__)

DEFAULT_MAPPED_HOSTS = (
    "www.youtube.com",
    "youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "check.torproject.org",
    # The recaptcha block redirects to www.google.com/sorry (the fake serves it).
    "www.google.com",
    "google.com",
)
_AUTHORITIES = 3
_MAX_EXITS = 100  # exits use 127.0.0.11 ... 127.0.0.110 and ORPorts port_base+200 ...
_POLL = 0.1


class TorLabError(RuntimeError):
    """The lab could not start (the message carries the relevant tor log lines)."""


def _exit_ip(index: int) -> str:
    return f"127.0.0.{11 + index}"


class TorLab:
    """A running private Tor network; use as a context manager (``with TorLab() as lab:``).

    Ports: the client's SOCKS/control ports, and relay ports from ``port_base`` (authority
    ORPorts port_base+i, DirPorts port_base+2000+i, middles +100, exits +200); two labs in one
    namespace need different ports.
    """

    def __init__(
        self,
        exits: int = 8,
        *,
        middles: int = 3,
        workdir: str | os.PathLike[str] | None = None,
        control_password: str | None = None,
        conflux: bool = True,
        socks_port: int = 9050,
        control_port: int = 9051,
        target_ip: str = "127.0.0.1",
        mapped_hosts: Sequence[str] = DEFAULT_MAPPED_HOSTS,
        port_base: int = 5000,
    ) -> None:
        if not 1 <= exits <= _MAX_EXITS:
            raise ValueError(f"exits must be 1..{_MAX_EXITS}")
        if middles < 1:
            raise ValueError("a lab needs at least one middle relay")
        self._own_workdir = workdir is None
        self._workdir = Path(workdir) if workdir is not None else None
        self._password = control_password
        self._conflux = conflux
        self._socks_port = socks_port
        self._control_port = control_port
        self._target_ip = target_ip
        self._mapped_hosts = tuple(mapped_hosts)
        self._relays = (
            [
                Relay(f"auth{i}", "authority", torrc.RELAY_ADDRESS, port_base + i, port_base + 2000 + i)
                for i in range(_AUTHORITIES)
            ]
            + [Relay(f"middle{i}", "middle", torrc.RELAY_ADDRESS, port_base + 100 + i) for i in range(middles)]
            # Exits advertise their own source address, so the consensus says what a server sees.
            + [Relay(f"exit{i}", "exit", _exit_ip(i), port_base + 200 + i) for i in range(exits)]
        )
        if target_ip in {r.address for r in self._relays}:
            # The client would make that relay the exit for every stream ("exit enclave").
            raise ValueError(f"target_ip {target_ip} is a relay's address")
        self._fingerprints: dict[str, str] = {}
        self._procs: list[TorProcess] = []
        self._owner: Controller | None = None
        self.timings: dict[str, float] = {}

    # -- public view -------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("the lab has not been started")
        return self._workdir

    @property
    def endpoint(self) -> TorEndpoint:
        return TorEndpoint(
            socks_port=self._socks_port,
            control_port=self._control_port,
            control_password=self._password,
        )

    @property
    def cookie_path(self) -> Path:
        return self.workdir / "client" / "control_auth_cookie"

    @property
    def exit_fingerprints(self) -> dict[str, str]:
        """Exit fingerprint -> the IP a target sees (also the exit's advertised address)."""
        return {self._fingerprints[r.nick]: r.address for r in self._exits}

    @property
    def exit_ips(self) -> list[str]:
        return [r.address for r in self._exits]

    @property
    def pids(self) -> dict[str, int]:
        """Nickname -> PID of every tor this lab started."""
        return {p.nick: p.pid for p in self._procs}

    def controller(self) -> Controller:
        """A new authenticated controller on the client; the caller closes it."""
        ctrl = Controller.from_port(address="127.0.0.1", port=self._control_port)
        try:
            ctrl.authenticate(password=self._password)
        except BaseException:
            ctrl.close()
            raise
        return ctrl

    def client_config(self) -> dict[str, str | list[str]]:
        """The torrc options that make another tor a client of this lab, and of nothing else
        (``launch_tor(extra_config=...)``): the lab's authorities, its address map."""
        lines = (self.workdir / "client" / "torrc").read_text().splitlines()
        authorities = [line.split(" ", 1)[1] for line in lines if line.startswith("DirAuthority ")]
        mapped = [line.split(" ", 1)[1] for line in lines if line.startswith("MapAddress ")]
        if not authorities:
            raise RuntimeError("the lab's client torrc has no DirAuthority lines")
        # UseMicrodescriptors 0: microdescriptor policy summaries hide the loopback exit policy.
        return {
            "TestingTorNetwork": "1",
            "UseDefaultFallbackDirs": "0",
            "UseMicrodescriptors": "0",
            "DirAuthority": authorities,
            "MapAddress": mapped,
        }

    def tor_wrapper(self, bin_dir: Path) -> Path:
        """A ``tor`` in ``bin_dir`` that runs the real one as a client of this lab: put
        ``bin_dir`` first on PATH and whatever launches "tor" joins the lab (the guard in front
        of the real tor still checks the namespace)."""
        extra = [
            arg
            for key, values in self.client_config().items()
            for value in ([values] if isinstance(values, str) else values)
            for arg in (f"--{key}", value)
        ]
        bin_dir.mkdir(parents=True, exist_ok=True)
        wrapper = bin_dir / "tor"
        wrapper.write_text(f'#!/bin/sh\nPATH={shlex.quote(os.environ["PATH"])} exec tor "$@" {shlex.join(extra)}\n')
        wrapper.chmod(0o755)
        return wrapper

    @property
    def _exits(self) -> list[Relay]:
        return [r for r in self._relays if r.role == "exit"]

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> TorLab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> TorLab:
        """Start every tor and return once the client can reach every exit, or raise."""
        require_loopback_only()  # before anything else: no tor outside a loopback-only netns
        if self._procs:
            raise RuntimeError("the lab is already running")
        tor = shutil.which("tor")
        gencert = shutil.which("tor-gencert")
        if tor is None or gencert is None:
            raise TorLabError("the lab needs tor and tor-gencert: apt-get install tor")
        began = time.monotonic()
        deadline = began + timeout
        self.timings = {}
        try:
            self._prepare_workdir()
            shim, hashed = self._make_keys(tor, gencert, deadline)
            self._mark("keys", began)
            phase = time.monotonic()
            self._launch_relays(tor, shim)
            self._wait_for(self._consensus_complete, deadline, "a consensus listing every relay")
            self._mark("consensus", phase)
            phase = time.monotonic()
            self._launch_client(tor, hashed)
            self._wait_for(self._client_ready, deadline, "the client to bootstrap with every exit")
            self._mark("client", phase)
            phase = time.monotonic()
            self._warm_up(deadline)
            self._mark("warmup", phase)
        except BaseException:
            self.stop()
            raise
        self._mark("total", began)
        log.info("lab ready in %.1f s: %s", self.timings["total"], self.timings)
        return self

    def stop(self) -> None:
        """Stop every tor by PID, then remove the working directory if the lab created it."""
        if self._workdir is not None:
            stop_all(self._procs, marker=str(self._workdir))
        if self._owner is not None:
            self._owner.close()
            self._owner = None
        self._procs = []
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # -- start-up steps ----------------------------------------------------------------------

    def _mark(self, phase: str, since: float) -> None:
        self.timings[phase] = round(time.monotonic() - since, 3)

    def _prepare_workdir(self) -> None:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="torlab-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        for nick in [r.nick for r in self._relays] + ["client"]:
            (self._workdir / nick / "keys").mkdir(mode=0o700, parents=True, exist_ok=True)
            (self._workdir / nick).chmod(0o700)
        (self._workdir / "empty").write_text("")
        # Only exits resolve, and only if MapAddress does not cover a name; nothing answers here.
        (self._workdir / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def _make_keys(self, tor: str, gencert: str, deadline: float) -> tuple[Path, str | None]:
        """Relay keys, the bind shim and the password hash, side by side."""
        shim = ShimBuild()
        hashing = None
        if self._password is not None:
            # tor's own S2K hash; the test password is briefly visible in this child's argv.
            hashing = subprocess.Popen(
                [tor, "--hash-password", self._password, "--quiet"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        try:
            self._fingerprints = prepare_keys(self.workdir, self._relays, tor, gencert, os.getpid(), deadline)
            hashed = None
            if hashing is not None:
                out, _ = hashing.communicate(timeout=max(deadline - time.monotonic(), 0.1))
                if hashing.returncode != 0:
                    raise TorLabError(f"tor --hash-password failed: {out.strip()}")
                hashed = out.strip().splitlines()[-1]
        except BaseException:
            shim.abandon()
            raise
        finally:
            if hashing is not None and hashing.poll() is None:
                hashing.kill()
                hashing.wait()
        return shim.wait(max(deadline - time.monotonic(), 0.1)), hashed

    def _authorities(self) -> list[Authority]:
        result = []
        for relay in self._relays[:_AUTHORITIES]:
            cert = (self.workdir / relay.nick / "keys" / "authority_certificate").read_text()
            v3ident = next(line.split()[1] for line in cert.splitlines() if line.startswith("fingerprint "))
            result.append(Authority(relay, v3ident, self._fingerprints[relay.nick]))
        return result

    def _launch_relays(self, tor: str, shim: Path) -> None:
        workdir, pid = self.workdir, os.getpid()
        authorities = self._authorities()
        (workdir / "v3bw").write_text(torrc.v3bw_text(self._fingerprints.values(), int(time.time())))
        for relay in self._relays:
            conf = workdir / relay.nick / "torrc"
            conf.write_text(torrc.relay_torrc(workdir, relay, authorities, self._fingerprints, self._relays, pid))
            env = {"LD_PRELOAD": str(shim), "LAB_BIND_ADDR": relay.address} if relay.role == "exit" else None
            self._procs.append(TorProcess(tor, relay.nick, conf, workdir / "empty", env))

    def _launch_client(self, tor: str, hashed_password: str | None) -> None:
        conf = self.workdir / "client" / "torrc"
        text = torrc.client_torrc(
            self.workdir,
            self._authorities(),
            os.getpid(),
            socks_port=self._socks_port,
            control_port=self._control_port,
            hashed_password=hashed_password,
            conflux=self._conflux,
            target_ip=self._target_ip,
            mapped_hosts=self._mapped_hosts,
        )
        conf.write_text(text)
        self._procs.append(TorProcess(tor, "client", conf, self.workdir / "empty"))

    def _wait_for(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while not ready():
            dead = [p for p in self._procs if not p.alive()]
            if dead:
                raise TorLabError(f"tor {dead[0].nick} exited while waiting for {what}:\n{dead[0].log_tail()}")
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {p.nick}\n{p.log_tail(3)}" for p in self._procs[:1] + self._procs[-1:])
                raise TorLabError(f"timed out waiting for {what}\n{tails}")
            time.sleep(_POLL)

    def _consensus_complete(self) -> bool:
        """auth0's consensus lists every relay, each exit with the Exit flag (gotcha 7)."""
        auth0 = self._relays[0]
        conn = http.client.HTTPConnection(auth0.address, auth0.dir_port, timeout=2.0)
        try:
            conn.request("GET", "/tor/status-vote/current/consensus")
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
        except OSError:
            return False
        finally:
            conn.close()
        if response.status != 200:
            return False
        flags: dict[str, list[str]] = {}
        nick = ""
        for line in body.splitlines():
            if line.startswith("r "):
                nick = line.split()[1]
            elif line.startswith("s ") and nick:
                flags[nick] = line.split()[1:]
        return all(r.nick in flags and (r.role != "exit" or "Exit" in flags[r.nick]) for r in self._relays)

    def _client_ready(self) -> bool:
        """Bootstrapped 100 % and holding the full descriptor of every relay (the warm-up builds
        circuits through the middles too)."""
        if self._owner is None:
            try:
                # Probe first: stem leaks its socket when the connection is refused.
                socket.create_connection(("127.0.0.1", self._control_port), timeout=1.0).close()
                # The first controller takes ownership (stem sends TAKEOWNERSHIP because we are
                # __OwningControllerProcess, and resets that option). It stays open until stop():
                # closing it would end the client (gotcha 8).
                self._owner = self.controller()
            except (OSError, stem.SocketError):  # not listening yet
                return False
        if "PROGRESS=100" not in self._owner.get_info("status/bootstrap-phase", ""):
            return False
        return all(self._owner.get_info(f"desc/id/{fp}", None) for fp in self._fingerprints.values())

    def _warm_up(self, deadline: float) -> None:
        """Build one circuit through every exit, so each has carried a circuit before use."""
        assert self._owner is not None
        middles = [self._fingerprints[r.nick] for r in self._relays if r.role == "middle"]
        pending = dict.fromkeys(self.exit_fingerprints, "")
        built: list[str] = []
        while pending:
            for i, (fp, circ) in enumerate(pending.items()):
                if not circ:
                    pending[fp] = self._owner.new_circuit([middles[i % len(middles)], fp])
            time.sleep(_POLL / 2)
            status = {c.id: c.status for c in self._owner.get_circuits()}
            for fp, circ in list(pending.items()):
                if status.get(circ) == "BUILT":
                    built.append(pending.pop(fp))
                elif status.get(circ) in (None, "FAILED", "CLOSED"):  # failed: try again
                    pending[fp] = ""
            if pending and time.monotonic() > deadline:
                raise TorLabError(f"no circuit could be built through exits {sorted(pending)}")
        for circ in built:
            self._owner.close_circuit(circ)
