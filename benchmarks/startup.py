"""Start-up: how long the command takes before it fetches, for this tree and a baseline commit
side by side in one run (so the machine's load hits both alike).

Must run inside a loopback-only network namespace (TorLab refuses otherwise):

    /work/shared/bin/netjail timeout 1200 .venv/bin/python -m benchmarks.startup \\
        --baseline d56e10c --json benchmarks/startup.json

For each tree (the baseline's ``src`` is taken with ``git archive``; both run in this venv, the
tree first on PYTHONPATH) and each run, alternating trees:

- **import**: ``python -X importtime -c "import yt_study_buddy.cli"``, the cumulative figure,
  and the CPU seconds (user + system) of ``python -c "import yt_study_buddy.cli"``: on shared
  cores the wall time varies with the load, the CPU time much less;
- **running tor**: ``yt-study-buddy VIDEO --no-launch-tor`` on the lab's tor: seconds from
  starting the command to the fake YouTube's first request (the exit check), to its first
  request for the video (the fetch started), and to the command's exit;
- **no tor running**: the same command on two ports where nothing answers, with a ``tor`` on
  PATH that joins the lab (``TorLab.tor_wrapper``) and its cache kept between runs (as a
  user's is; an unmeasured run warms it first): up to the first note written (its mtime), and
  (``-v`` lines) from the decision to launch tor to its "Bootstrapped 100 %".

Every run also records the command's CPU seconds (with its tor's, for a launched one).

Each run has a fresh output and state directory (a fresh exit ledger) and a fresh video.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from yt_study_buddy.testing.fake_youtube import FakeYouTube
from yt_study_buddy.testing.fake_youtube._pages import sample_videos
from yt_study_buddy.testing.network import TorLab

from .run import ROOT, _commit, _free_ports, _machine

COMMAND = ROOT / ".venv" / "bin" / "yt-study-buddy"
#: Modules a fetch of one video needs none of before its first request, or none at all.
WATCHED_MODULES = ("rich", "yaml", "psycopg", "yt_dlp", "sqlite3", "stem", "requests", "youtube_transcript_api")
RUN_TIMEOUT = 180.0
#: The ``-v`` log lines that say tor is being launched and that it has bootstrapped.
LAUNCHING, BOOTSTRAPPED = "starting a tor of our own", "tor: Bootstrapped 100 %"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _tree_env(src: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
    env.update(PYTHONPATH=str(src), **extra)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_cpu_seconds(src: Path) -> float:
    """CPU seconds of a process that imports ``yt_study_buddy.cli`` and exits."""
    before = _children_cpu()
    subprocess.run([sys.executable, "-c", "import yt_study_buddy.cli"], env=_tree_env(src), timeout=60, check=True)
    return _children_cpu() - before


def _logged_at(stderr: str, words: str) -> datetime | None:
    """When the first ``-v`` line (``2026-12-03 14:07:26,357 ...``) holding ``words`` was logged."""
    line = next((line for line in stderr.splitlines() if words in line), None)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") if line else None


def import_seconds(src: Path) -> float:
    """The cumulative import time of ``yt_study_buddy.cli``, as ``-X importtime`` reports it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import yt_study_buddy.cli"],
        env=_tree_env(src),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    last = next(line for line in reversed(done.stderr.splitlines()) if line.endswith("| yt_study_buddy.cli"))
    return int(last.split("|")[1]) / 1e6


def imported_modules(src: Path) -> list[str]:
    """Which of ``WATCHED_MODULES`` importing the CLI imports."""
    probe = f"import sys, yt_study_buddy.cli; print(' '.join(m for m in {WATCHED_MODULES!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=_tree_env(src), capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def run_command(
    src: Path, args: Sequence[str], fake: FakeYouTube, video: str, output: Path, **env: str
) -> dict[str, Any]:
    """One ``yt-study-buddy`` run for ``video``: its times, from the fake's log and the note."""
    logged = len(fake.requests)
    cpu = _children_cpu()
    began_wall, began = time.time(), time.monotonic()
    done = subprocess.run(
        [str(COMMAND), video, "--output", str(output), *args],
        env=_tree_env(src, **env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    took = time.monotonic() - began
    requests = fake.requests[logged:]
    notes = list(output.glob(f"*{video}*.md"))
    launching, bootstrapped = _logged_at(done.stderr, LAUNCHING), _logged_at(done.stderr, BOOTSTRAPPED)
    return {
        "status": done.returncode,
        "stderr": done.stderr.strip()[-600:],
        "cpu_s": _children_cpu() - cpu,
        "tor_launch_s": (bootstrapped - launching).total_seconds() if launching and bootstrapped else None,
        "first_request_s": requests[0].time - began if requests else None,
        "first_fetch_s": next((r.time - began for r in requests if r.video_id == video), None),
        "first_note_s": notes[0].stat().st_mtime - began_wall if notes else None,
        "exit_s": took,
    }


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the commit to compare with (e.g. main before the change)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measurement per tree")
    parser.add_argument("--json", type=Path, help="write every run and the medians here")
    args = parser.parse_args(argv)
    began, load_at_start = time.monotonic(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.baseline, "src"], cwd=ROOT, capture_output=True, timeout=60, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, timeout=60, check=True)
        trees = {"baseline": baseline / "src", "current": ROOT / "src"}
        rows: list[dict[str, Any]] = []
        with TorLab(exits=4) as lab, FakeYouTube(latency=0.0) as fake:
            bin_dir, cache = tmp / "bin", tmp / "cache"
            lab.tor_wrapper(bin_dir)
            endpoint = lab.endpoint
            running = [
                "-q",
                "--no-launch-tor",
                "--tor-socks",
                f"127.0.0.1:{endpoint.socks_port}",
                "--tor-control",
                f"127.0.0.1:{endpoint.control_port}",
                "--ca-bundle",
                str(fake.ca_path),
            ]
            password = {"YTSB_TOR_PASSWORD": endpoint.control_password} if endpoint.control_password else {}
            launch_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "XDG_CACHE_HOME": str(cache)}
            videos = iter(v.video_id for v in sample_videos(4 * args.repeat * len(trees) + 4, seed="startup"))
            count = 0

            def launching(src: Path) -> dict[str, Any]:
                nonlocal count
                count += 1
                socks, control = _free_ports(2)
                own = [
                    "-v",
                    "--tor-socks",
                    f"127.0.0.1:{socks}",
                    "--tor-control",
                    f"127.0.0.1:{control}",
                    "--ca-bundle",
                    str(fake.ca_path),
                    "--state-dir",
                    str(tmp / f"state-{count}"),
                ]
                return run_command(src, own, fake, next(videos), tmp / f"notes-{count}", **launch_env)

            for src in trees.values():  # compiles each tree's bytecode, so no run pays for it
                import_seconds(src)
            warm = launching(trees["current"])  # the first launch fetches the lab's consensus
            _say(f"warm-up launch: first note after {warm['first_note_s']} s (status {warm['status']})")
            for run in range(1, args.repeat + 1):
                for tree, src in trees.items():
                    count += 1
                    state = ["--state-dir", str(tmp / f"state-{count}")]
                    row: dict[str, Any] = {
                        "tree": tree,
                        "run": run,
                        "load_before": os.getloadavg()[0],
                        "import_s": import_seconds(src),
                        "import_cpu_s": import_cpu_seconds(src),
                        "running": run_command(
                            src, [*running, *state], fake, next(videos), tmp / f"notes-{count}", **password
                        ),
                        "launched": launching(src),
                    }
                    rows.append(row)
                    _say(
                        f"{tree:8} run {run}: import {row['import_s']:.3f} s ({row['import_cpu_s']:.3f} s CPU), running"
                        f" tor: first fetch {row['running']['first_fetch_s']} s, no tor: first note"
                        f" {row['launched']['first_note_s']} s (tor launched in {row['launched']['tor_launch_s']} s)"
                    )
        summary = {
            tree: {
                "imports": imported_modules(src),
                **{key: _median([r for r in rows if r["tree"] == tree], key) for key in ("import_s", "import_cpu_s")},
                **{
                    f"{mode}_{key}": _median([r[mode] for r in rows if r["tree"] == tree], key)
                    for mode in ("running", "launched")
                    for key in ("first_request_s", "first_fetch_s", "first_note_s", "exit_s", "cpu_s", "tor_launch_s")
                },
            }
            for tree, src in trees.items()
        }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(
                        ["python -m benchmarks.startup", *(argv if argv is not None else sys.argv[1:])]
                    ),
                    "commit": _commit(),
                    "baseline": args.baseline,
                    "machine": _machine(),
                    "took_s": time.monotonic() - began,
                    "load_at_start": load_at_start,
                    "load_at_end": os.getloadavg(),
                    "medians": summary,
                    "runs": rows,
                },
                indent=1,
            )
        )
    failed = [r for r in rows for mode in ("running", "launched") if r[mode]["status"] != 0]
    for row in failed[:3]:
        _say(f"failed: {row['tree']} run {row['run']}: {row['running']['stderr'] or row['launched']['stderr']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
