"""Every benchmark in one run: the designs side by side on a private Tor network, then the
other suites (planning, search, descriptors, allocation, start-up, courses, distributed), all in one file.

Must run inside a loopback-only network namespace (TorLab refuses otherwise):

    /work/shared/bin/netjail timeout 6000 .venv/bin/python -m benchmarks.run --json benchmarks/results.json

Each scenario starts its own lab (E exits) and fake YouTube (latency F); each design runs in a
child process (``benchmarks.child``) with a fresh temporary exit ledger, one after the other,
so the ratios between designs come from one lab in one run. Each other suite is its own module
(``python -m benchmarks.NAME``, which runs alone too), run here as a subprocess with the
arguments in ``SUITES``; its own JSON lands under ``suites`` in this run's file.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from yt_study_buddy import SessionOutcome
from yt_study_buddy._settings import DEFAULT_CONTROL_PORT, DEFAULT_SOCKS_PORT
from yt_study_buddy.app import ClientSettings, Launch, open_client
from yt_study_buddy.testing.fake_youtube import FakeYouTube
from yt_study_buddy.testing.fake_youtube._pages import sample_videos
from yt_study_buddy.testing.network import TorLab
from yt_study_buddy.tor._rotation import NEWNYM_INTERVAL

from .designs import DESIGNS
from .report import COLUMNS, make_row, markdown_table, median_rows
from .scenarios import SCENARIOS, Scenario

ROOT = Path(__file__).resolve().parent.parent
BUILD_SAMPLES = 5
#: main before the start-up work: the start-up suite runs it beside this tree.
STARTUP_BASELINE = "d56e10c"


@dataclass(frozen=True)
class Suite:
    """A benchmark module beside the scenarios, and how the full run calls it."""

    module: str
    args: tuple[str, ...]
    timeout_s: float


#: Cheapest first, so a broken suite shows early; "scenarios" (the designs) runs last.
SUITES = {
    "planning": Suite("planning", ("--sizes", "1000", "10000", "--repeat", "5"), 600),
    "search": Suite("search", ("--sizes", "100", "1000", "--repeat", "3"), 600),
    "descriptors": Suite("descriptors", ("--seconds", "150"), 400),
    "descriptors-lazy": Suite("descriptors", ("--seconds", "150", "--lazy"), 400),
    "allocation": Suite("allocation", ("--videos", "9", "--exits", "12", "--repeat", "3"), 900),
    "startup": Suite("startup", ("--baseline", STARTUP_BASELINE, "--repeat", "9"), 1500),
    "courses": Suite("courses", (), 2400),
    "distributed": Suite("distributed", (), 1800),
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _json_value(value: object) -> object:
    """JSON for what ``asdict(scenario)`` leaves: a rate limit's Behavior."""
    return value.value if isinstance(value, enum.Enum) else str(value)


def measure_circuit_build(lab: TorLab, fake: FakeYouTube) -> float:
    """Median seconds for one fresh checked session: a circuit build plus the exit check."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_client(
            lab.endpoint,
            ClientSettings(ledger_path=Path(tmp) / "ledger.sqlite3", ca_bundle=str(fake.ca_path)),
            launch=Launch(False),
        ) as client,
    ):
        samples = []
        for _ in range(BUILD_SAMPLES):
            began = time.monotonic()
            session = client.new_session()
            samples.append(time.monotonic() - began)
            session.end_as(SessionOutcome.CANCELLED)  # unused: no cooldown
            session.close()
    return statistics.median(samples)


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (the OS's pick), for a tor that must find none there."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_child(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One design in its own process; a failure becomes ``{"error": ...}``, never an exception."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.child"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-600:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_design(
    scenario: Scenario,
    design: str,
    size: int,
    fake: FakeYouTube,
    endpoint: dict[str, Any],
    build: float,
    repeat: int,
    launch_dir: Path,
) -> dict[str, Any]:
    """One design on ``size`` fresh video ids with a fresh temporary exit ledger: its row."""
    videos = [v.video_id for v in sample_videos(size, seed=f"{scenario.name}-{design}-{size}-{repeat}")]
    logged = len(fake.requests)
    load = os.getloadavg()[0]
    # A fresh rate limiter: the previous design's asks (on the same exits) count for nothing.
    fake.set_rate_limit(scenario.rate_limit)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_child(
            {
                "design": design,
                "endpoint": endpoint,
                "ca_path": str(fake.ca_path),
                "ledger_path": str(Path(tmp) / "ledger.sqlite3"),
                "videos": videos,
                "workers": scenario.workers,
                "cooldown_s": scenario.cooldown_s,
                # For a design that launches its own tor: a tor on PATH that joins the lab, the
                # cache its consensus is kept in between runs (as a user's is), two free ports.
                "tor_bin_dir": str(launch_dir / "bin"),
                "tor_cache_dir": str(launch_dir / "cache"),
                "free_ports": _free_ports(2),
            },
            scenario.timeout_s,
        )
    row = make_row(scenario, design, videos, build, result, fake.requests[logged:])
    row.update(load_before=load, run=repeat, strategy=result.get("strategy"), ready_s=result.get("ready_s"))
    _say(
        f"   {design:8} N={size:<5} run {repeat}: wall {row['wall'] or 0:7.1f} s  fetched {row['fetched']}"
        f"  exits {row['exits_used']}  circuits {row['circuits_built']}  ({row['strategy']}, ready in"
        f" {row['ready_s'] or 0:.1f} s)  errors {len(row['errors'])}"
    )
    return row


def run_scenario(scenario: Scenario, designs: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    _say(f"== {scenario.name}: {scenario.what}")
    rows = []
    with (
        TorLab(
            exits=scenario.exits,
            socks_port=args.socks_port,
            control_port=args.control_port,
            port_base=args.port_base,
            target_ip=args.target_ip,
        ) as lab,
        FakeYouTube(host=args.target_ip, latency=scenario.latency, rate_limit=scenario.rate_limit) as fake,
        tempfile.TemporaryDirectory() as launch_dir,
    ):
        lab.tor_wrapper(Path(launch_dir) / "bin")
        build = measure_circuit_build(lab, fake)
        _say(f"   lab up in {lab.timings['total']:.1f} s; one circuit build + exit check: {build:.2f} s")
        endpoint = {
            "socks_port": lab.endpoint.socks_port,
            "control_port": lab.endpoint.control_port,
            "control_password": lab.endpoint.control_password,
        }
        last_newnym = float("-inf")
        for size in scenario.sizes:
            # Designs alternate within each round, so a change in the machine's load hits all alike.
            for repeat in range(1, scenario.repeats(args.repeat) + 1):
                for design in (d for d in scenario.designs if d in designs):
                    newnym = DESIGNS[design].strategy == "newnym"
                    if newnym and repeat > 1:
                        continue  # minutes per run, and no target: measured once
                    if newnym:  # the previous run's last NEWNYM would delay this one's first
                        time.sleep(max(0.0, last_newnym + NEWNYM_INTERVAL - time.monotonic()))
                    rows.append(run_design(scenario, design, size, fake, endpoint, build, repeat, Path(launch_dir)))
                    if newnym:
                        last_newnym = time.monotonic()
        return {"scenario": asdict(scenario), "circuit_build_s": build, "lab_timings": lab.timings, "rows": rows}


def run_suite(name: str, suite: Suite, args: tuple[str, ...] | None = None) -> dict[str, Any]:
    """One suite as a subprocess (its progress and tables on our stderr): its status and JSON."""
    argv = [sys.executable, "-m", f"benchmarks.{suite.module}", *(suite.args if args is None else args)]
    _say(f"== {name}: {' '.join(argv[1:])}")
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        try:
            status = subprocess.run(
                [*argv, "--json", str(out)], stdout=sys.stderr, cwd=ROOT, timeout=suite.timeout_s
            ).returncode
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            status = None
        result = json.loads(out.read_text()) if out.exists() else None
    return {
        "command": " ".join(["python", *argv[1:]]),
        "status": status,
        "error": None
        if status == 0
        else f"timed out after {suite.timeout_s:g} s"
        if status is None
        else f"exit {status}",
        "took_s": time.monotonic() - began,
        "result": result,
    }


def _commit() -> str:
    """The library's commit, with "+dirty" when the work tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _machine() -> dict[str, Any]:
    """The cores, Python, platform and tor a result was measured with."""
    tor = subprocess.run(["tor", "--version"], capture_output=True, text=True, timeout=10).stdout.split("\n")[0]
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(), "tor": tor}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--suite",
        action="append",
        choices=[*SUITES, "scenarios"],
        help="run this suite (repeatable; default: every one, or only the scenarios with --scenario)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run this scenario (repeatable; default: doc, reuse, memory, ratelimit)",
    )
    parser.add_argument(
        "--design",
        action="append",
        choices=sorted(DESIGNS),
        help="run only this design (repeatable; default: each scenario's own)",
    )
    parser.add_argument("--json", type=Path, help="also write every row and the lab timings here")
    parser.add_argument("--repeat", type=int, help="runs of each design (default: each scenario's own, 5 mostly)")
    parser.add_argument("--socks-port", type=int, default=DEFAULT_SOCKS_PORT)
    parser.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT)
    parser.add_argument("--port-base", type=int, default=5000, help="TorLab relay ports")
    parser.add_argument("--target-ip", default="127.0.0.1", help="where the fake YouTube listens (:443)")
    args = parser.parse_args(argv)
    suites = args.suite or (["scenarios"] if args.scenario else [*SUITES, "scenarios"])
    names = args.scenario or ["doc", "reuse", "memory", "ratelimit"]
    designs = tuple(args.design or DESIGNS)
    began, load_at_start = time.monotonic(), os.getloadavg()
    others = {name: run_suite(name, SUITES[name]) for name in SUITES if name in suites}
    results = [run_scenario(SCENARIOS[name], designs, args) for name in names] if "scenarios" in suites else []
    rows = [row for result in results for row in result["rows"]]
    if rows:
        print(markdown_table(median_rows(rows)))
    for row in rows:
        for error in row["errors"][:3]:
            print(f"- {row['scenario']}/{row['design']}: {error}")
    for name, other in others.items():
        print(f"- {name}: {other['error'] or 'done'} in {other['took_s']:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]),
                    "commit": _commit(),
                    "machine": _machine(),
                    "took_s": time.monotonic() - began,
                    "load_at_start": load_at_start,
                    "load_at_end": os.getloadavg(),
                    "columns": COLUMNS,
                    "medians": median_rows(rows),
                    "scenarios": results,
                    "suites": others,
                },
                indent=1,
                default=_json_value,
            )
        )
    complete = (
        not row["errors"] and row["fetched"] == row["videos"]
        for row in rows
        if not DESIGNS[row["design"]].may_lose_videos
    )
    return 0 if all(complete) and all(other["status"] == 0 for other in others.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
