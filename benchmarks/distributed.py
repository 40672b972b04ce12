"""One distributed worker against two, on the same exits: adding machines does not raise E/C.

A private Tor network (E exits), a fake YouTube (F s per video), a throwaway PostgreSQL cluster
and two tor clients joined to the network (two "machines"). Each round enqueues N fresh videos
into a fresh schema (queue, ledger and notes) and runs ``yt-study-buddy worker`` processes, W
jobs each: first one worker, then two, alternating. The videos' times are the notes'
``fetched_at`` (the server's clock); U, how long a video holds its exit, is from the fake's log.

    /work/shared/bin/netjail timeout 1800 .venv/bin/python -m benchmarks.distributed --json benchmarks/distributed.json

Reported per design (medians over ``--repeat`` rounds): wall s (first to last note), steady
videos/s = (N - E) / (time of the last note - time of the E-th), that as % of E/C and of
E/(C + U), and the exits used.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from yt_study_buddy.app._distributed import JobOptions, JobQueue
from yt_study_buddy.testing.fake_youtube import FakeYouTube
from yt_study_buddy.testing.network import TorLab
from yt_study_buddy.testing.postgres import postgres_bindir, postgres_cluster
from yt_study_buddy.tor._endpoint import TorEndpoint
from yt_study_buddy.tor._launcher import launch_tor
from yt_study_buddy.tor._ledger import PostgresDsn

from .run import _commit, _machine

DESIGNS = {"one worker": 1, "two workers": 2}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_worker(name: str, endpoint: TorEndpoint, dsn: str, args: argparse.Namespace, ca: Path, state: Path) -> Any:
    env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yt_study_buddy",
            "worker",
            "-q",
            "--queue",
            dsn,
            "--name",
            name,
            "--concurrency",
            str(args.concurrency),
            "--cooldown-hours",
            str(args.cooldown / 3600),
            "--tor-socks",
            f"{endpoint.socks_host}:{endpoint.socks_port}",
            "--tor-control",
            f"{endpoint.control_host}:{endpoint.control_port}",
            "--ca-bundle",
            str(ca),
            "--state-dir",
            str(state / name),
            "--no-launch-tor",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_design(
    design: str, round_: int, server: str, tors: list[TorEndpoint], fake: FakeYouTube, args: argparse.Namespace
) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    dsn = f"{server}&options=-csearch_path%3D{schema}"
    ids = [f"d{round_:02d}{design[0]}{n:04d}".ljust(11, "x")[:11] for n in range(args.videos)]
    fake.reset()
    JobQueue(PostgresDsn(dsn)).enqueue(ids, JobOptions())
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as state:
        workers = [start_worker(f"w{n}", tors[n], dsn, args, fake.ca_path, Path(state)) for n in range(DESIGNS[design])]
        try:
            while True:
                with psycopg.connect(dsn, connect_timeout=10) as conn:
                    row = conn.execute("SELECT count(*) FROM ytsb_notes").fetchone()
                if row and row[0] >= len(ids):
                    break
                if time.monotonic() - began > args.timeout:
                    raise SystemExit(f"{design}: not done within {args.timeout} s")
                if any(worker.poll() is not None for worker in workers):
                    raise SystemExit(f"{design}: a worker ended early")
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(timeout=10)
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        times = sorted(row[0] for row in conn.execute("SELECT fetched_at FROM ytsb_notes").fetchall())
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    holds = []
    for vid in ids:
        served = fake.served(video_id=vid)
        if served:
            holds.append(max(r.answered or r.time for r in served) - min(r.time for r in served))
    hold = statistics.median(holds)
    exits = args.exits
    steady = (len(ids) - exits) / (times[-1] - times[exits - 1]).total_seconds()
    return {
        "design": design,
        "workers": DESIGNS[design],
        "wall_s": round((times[-1] - times[0]).total_seconds(), 2),
        "steady_videos_per_s": round(steady, 3),
        "pct_of_e_over_c": round(100 * steady / (exits / args.cooldown)),
        "pct_of_e_over_c_plus_u": round(100 * steady / (exits / (args.cooldown + hold))),
        "u_s": round(hold, 2),
        "exits_used": len({r.client_ip for r in fake.requests if r.video_id in set(ids)}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--exits", type=int, default=12)
    parser.add_argument("--cooldown", type=float, default=15.0, help="C, seconds")
    parser.add_argument("--latency", type=float, default=1.0, help="F, seconds per video")
    parser.add_argument("--concurrency", type=int, default=4, help="W, jobs at once per worker")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds per round")
    parser.add_argument("--json", type=Path, help="write the rows and medians here")
    args = parser.parse_args(argv)
    bindir = postgres_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)")
    load_start = os.getloadavg()[0]
    rows = []
    with (
        postgres_cluster(bindir) as cluster,
        TorLab(exits=args.exits) as lab,
        FakeYouTube(latency=args.latency) as fake,
        tempfile.TemporaryDirectory() as tors_dir,
        ThreadPoolExecutor(2) as pool,
    ):
        launched = list(
            pool.map(
                lambda n: launch_tor(
                    data_dir=Path(tors_dir) / f"tor{n}", extra_config=lab.client_config(), timeout=120
                ),
                range(2),
            )
        )
        try:
            for round_ in range(args.repeat):
                for design in DESIGNS if round_ % 2 == 0 else reversed(DESIGNS):
                    row = run_design(design, round_, cluster.dsn, [tor.endpoint for tor in launched], fake, args)
                    _say(json.dumps(row))
                    rows.append(row)
        finally:
            for tor in launched:
                tor.stop()
    medians = {}
    for design in DESIGNS:
        mine = [row for row in rows if row["design"] == design]
        medians[design] = {
            key: statistics.median(row[key] for row in mine) for key in mine[0] if key not in ("design", "workers")
        }
    two, one = medians["two workers"]["steady_videos_per_s"], medians["one worker"]["steady_videos_per_s"]
    result = {
        "command": " ".join(["python -m benchmarks.distributed", *(argv if argv is not None else sys.argv[1:])]),
        "commit": _commit(),
        "machine": _machine(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": {"start": load_start, "end": os.getloadavg()[0]},
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "rows": rows,
        "medians": medians,
        "two_over_one_steady": round(two / one, 3),
    }
    print(json.dumps({"medians": medians, "two_over_one_steady": result["two_over_one_steady"]}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
