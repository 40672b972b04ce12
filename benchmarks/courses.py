"""Courses through Tor: expanding long playlists, and a whole course fetched end to end.

Must run inside a loopback-only network namespace (TorLab refuses otherwise):

    /work/shared/bin/netjail timeout 3600 .venv/bin/python -m benchmarks.courses --json benchmarks/courses.json

One private Tor network (E exits) and fake YouTube (F s per video) for both parts:

- **expansion**: playlists of 100 and 1,000 videos, each expanded R times as the CLI expands
  a course (``expand_on_fresh_exits``: a fresh checked exit, then yt-dlp's extractor on it),
  alternating with the earlier way (yt-dlp processing every flat entry, ``process=True``).
  Seconds in all, seconds from the first course request to the last answer (the part on the
  exit), this process's CPU seconds, and from the fake's log the requests, their bytes and the
  seconds the fake spent answering. Pages are the playlist's (YouTube shows 100 a page).
- **course**: the CLI (``yt-study-buddy --parallel``, a subprocess) fetches a playlist of N
  videos with W workers and cooldown C: expansion, fetches, notes, ``index.md``. Once as
  installed with no tor running (it launches its own, joined to the lab: ``auto`` picks pin),
  once on the lab's running tor (a shared tor: ``auto`` picks isolate). The steady rate after
  the first E videos is set against the ceiling E/C and the true one E/(C+U), as in
  ``benchmarks.run`` (U: how long a video holds its exit, from the fake's log).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from yt_study_buddy._settings import DEFAULT_CONTROL_PORT, DEFAULT_SOCKS_PORT
from yt_study_buddy.app import ClientSettings, Launch, open_client
from yt_study_buddy.app._courses import expand_on_fresh_exits
from yt_study_buddy.testing.fake_youtube import FakeYouTube, LoggedRequest, fake_playlist
from yt_study_buddy.testing.fake_youtube._courses import PLAYLIST_PAGE_SIZE
from yt_study_buddy.testing.network import TorLab
from yt_study_buddy.tor import RotatingTorClient
from yt_study_buddy.youtube import CourseKind, CourseRef
from yt_study_buddy.youtube._courses import REQUEST_TIMEOUT
from yt_study_buddy.youtube._ytdlp import Extraction, _SessionYoutubeDL

from .report import exits_by_video, hold_time, steady_rate
from .run import ROOT, _commit, _free_ports, _machine

#: How the CLI meets tor: "launched" finds none and starts its own; "shared" is the lab's.
MODES = ("launched", "shared")


@dataclass(frozen=True)
class Options:
    """What one benchmark run measures (the defaults are the documented run's)."""

    expand_sizes: tuple[int, ...] = (100, 1000)
    expand_repeat: int = 5
    course_videos: int = 60
    workers: int = 10
    exits: int = 12
    cooldown_s: float = 20.0
    latency: float = 1.0
    course_repeat: int = 3
    modes: tuple[str, ...] = MODES
    course_timeout_s: float = 600.0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _course_requests(requests: Sequence[LoggedRequest], course_id: str) -> list[LoggedRequest]:
    return [r for r in requests if r.video_id == course_id]


def _span(requests: Sequence[LoggedRequest]) -> float | None:
    """First arrival to last answer."""
    if not requests:
        return None
    return max(r.answered or r.time for r in requests) - min(r.time for r in requests)


#: How a playlist is expanded: as the CLI does it, and yt-dlp's processing of every flat entry
#: (``extract_info`` with ``process=True``, what ``_ytdlp`` did before): side by side.
VARIANTS = ("ours", "processed")


def _processed(client: RotatingTorClient, ref: CourseRef) -> list[str]:
    """The earlier expansion: yt-dlp processes the playlist, each flat entry through its
    download pipeline, on one fresh checked exit (no retry: a failure ends the benchmark)."""
    session = client.new_session()
    try:
        extraction = Extraction(session, timeout=REQUEST_TIMEOUT)
        with _SessionYoutubeDL(extraction.params(), session, extraction) as ydl:
            info = ydl.extract_info(ref.url, download=False, ie_key="YoutubeTab")
        return [entry["id"] for entry in info["entries"]]
    finally:
        session.close()


def measure_expansion(lab: TorLab, fake: FakeYouTube, size: int, repeat: int) -> list[dict[str, Any]]:
    """``size`` videos expanded ``repeat`` times each way (`VARIANTS`, alternating) on fresh exits."""
    playlist = fake_playlist(size, seed=f"bench-expand-{size}", title=f"Benchmark course of {size}")
    fake.add_course(playlist)
    ref = CourseRef(CourseKind.PLAYLIST, playlist.course_id)
    ids = [v.video_id for v in playlist.videos]
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_client(
            lab.endpoint,
            ClientSettings(ledger_path=Path(tmp) / "ledger.sqlite3", ca_bundle=str(fake.ca_path), cooldown_hours=0),
            launch=Launch(False),
        ) as client,
    ):
        expand_on_fresh_exits(client, ref)  # a warm-up: yt-dlp's first-use costs go to no variant
        for run in range(1, repeat + 1):
            for variant in VARIANTS:
                logged, load = len(fake.requests), os.getloadavg()[0]
                began, cpu = time.monotonic(), time.process_time()
                found = expand_on_fresh_exits(client, ref).video_ids if variant == "ours" else _processed(client, ref)
                total, cpu = time.monotonic() - began, time.process_time() - cpu
                served = _course_requests(fake.requests[logged:], playlist.course_id)
                assert found == ids, f"{variant}: the expansion lost videos"
                row = {
                    "videos": size,
                    "variant": variant,
                    "run": run,
                    "load_before": load,
                    "pages": math.ceil(size / PLAYLIST_PAGE_SIZE),
                    "requests": len(served),
                    "bytes": sum(r.size for r in served),
                    "exits": len({r.client_ip for r in served}),
                    "total_s": total,
                    "on_exit_s": _span(served),
                    "served_s": sum((r.answered or r.time) - r.time for r in served),
                    "cpu_s": cpu,
                }
                _say(
                    f"   expand {size:5} {variant:9} run {run}: {total:.2f} s ({row['on_exit_s']:.2f} s on the"
                    f" exit, cpu {cpu:.2f} s), {row['requests']} requests for {row['pages']} pages"
                )
                rows.append(row)
    return rows


def run_course(
    lab: TorLab, fake: FakeYouTube, options: Options, mode: str, run: int, launch_dir: Path
) -> dict[str, Any]:
    """One end-to-end CLI run over a fresh playlist of ``course_videos`` videos: its row."""
    playlist = fake_playlist(
        options.course_videos, seed=f"bench-course-{mode}-{run}", title=f"Benchmark course {mode} {run}"
    )
    fake.add_course(playlist)
    ids = [v.video_id for v in playlist.videos]
    env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "--parallel",
            "--workers",
            str(options.workers),
            "--cooldown-hours",
            repr(options.cooldown_s / 3600),
            "--json",
            "-v",  # its "rotation: NAME" line says which strategy auto chose
            "--output",
            f"{tmp}/notes",
            "--state-dir",
            f"{tmp}/state",
            "--ca-bundle",
            str(fake.ca_path),
        ]
        if mode == "launched":  # nothing answers on these ports: the CLI starts a tor, on PATH the lab's
            socks, control = _free_ports(2)
            args += ["--tor-socks", f"127.0.0.1:{socks}", "--tor-control", f"127.0.0.1:{control}"]
            env["PATH"] = f"{launch_dir / 'bin'}{os.pathsep}{env['PATH']}"
            env["XDG_CACHE_HOME"] = str(launch_dir / "cache")  # the launched tor's cache, kept between runs
        else:
            endpoint = lab.endpoint
            args += ["--tor-socks", f"127.0.0.1:{endpoint.socks_port}", "--no-launch-tor"]
            args += ["--tor-control", f"127.0.0.1:{endpoint.control_port}"]
            if endpoint.control_password:
                env["YTSB_TOR_PASSWORD"] = endpoint.control_password  # never in argv
        logged, load = len(fake.requests), os.getloadavg()[0]
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "yt_study_buddy", *args, playlist.course_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=options.course_timeout_s,
            cwd=ROOT,
        )
        wall = time.monotonic() - began
        summary = json.loads(done.stdout) if done.stdout.strip() else {}
        folders = list(Path(tmp, "notes").glob(f"*[[]{playlist.course_id}]"))
        index = (folders[0] / "index.md").read_text() if folders else ""
    requests = fake.requests[logged:]
    videos = [r for r in requests if r.video_id in set(ids)]
    finished = sorted(
        max(r.answered or r.time for r in videos if r.video_id == v) for v in ids if v in summary_ok(summary)
    )
    seen = exits_by_video(videos, ids)
    hold = hold_time(videos, set(ids))
    rate = steady_rate(finished, options.exits)
    ceiling = options.exits / options.cooldown_s if options.cooldown_s else None
    true_ceiling = options.exits / (options.cooldown_s + hold) if options.cooldown_s and hold else None
    chosen = re.search(r"rotation: (\w+)", done.stderr)
    row = {
        "mode": mode,
        "strategy": chosen[1] if chosen else None,
        "run": run,
        "load_before": load,
        "returncode": done.returncode,
        "videos": options.course_videos,
        "workers": options.workers,
        "exits": options.exits,
        "cooldown_s": options.cooldown_s,
        "latency": options.latency,
        "wall_s": wall,
        "expansion_s": _span(_course_requests(requests, playlist.course_id)),
        # From the command's start: its first video request, and the last video answer.
        "first_video_s": min(r.time for r in videos) - began if videos else None,
        "last_video_s": max(r.answered or r.time for r in videos) - began if videos else None,
        "fetched": summary.get("fetched", 0),
        "failed": summary.get("failed", 0),
        "exits_used": len(set().union(*seen.values())),
        "videos_on_several_exits": sum(1 for ips in seen.values() if len(ips) > 1),
        "index_links": sum(1 for line in index.splitlines() if line[:1].isdigit() and "](" in line),
        "hold_s": hold,
        "steady_rate": rate,
        "pct_ceiling": 100 * rate / ceiling if rate is not None and ceiling else None,
        "pct_true_ceiling": 100 * rate / true_ceiling if rate is not None and true_ceiling else None,
        # Why a run failed or stopped: its stopping, error, failed and done lines, else its last words.
        "errors": [] if done.returncode == 0 else _why(done.stderr),
    }
    _say(
        f"   course {mode:8} run {run} ({row['strategy']}): wall {wall:.1f} s, fetched {row['fetched']}/{row['videos']},"
        f" exits {row['exits_used']}, steady {rate or 0:.3f} videos/s ({row['pct_true_ceiling'] or 0:.0f} % of E/(C+U))"
    )
    return row


def _why(stderr: str) -> list[str]:
    lines = [
        line
        for line in stderr.splitlines()
        if re.match(r"(notice: .*stopping|yt-study-buddy: error|failed |done: )", line)
    ]
    return lines[:10] or [stderr.strip()[-600:]]


def summary_ok(summary: dict[str, Any]) -> set[str]:
    """The videos the CLI's ``--json`` summary says it fetched."""
    return {r["video_id"] for r in summary.get("results", ()) if r.get("status") == "fetched"}


def medians(rows: Sequence[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """One row per value of ``keys``: every number's median over the runs."""
    groups: dict[tuple[object, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in keys), []).append(row)
    merged = []
    for runs in groups.values():
        row = dict(runs[0], runs=len(runs), errors=[e for run in runs for e in run.get("errors", [])])
        row["complete"] = sum(1 for run in runs if run.get("fetched", run["videos"]) == run["videos"])
        for name, value in runs[0].items():
            values = [
                run[name] for run in runs if isinstance(run[name], int | float) and not isinstance(run[name], bool)
            ]
            if name not in (*keys, "run") and isinstance(value, int | float) and values:
                row[name] = statistics.median(values)
        row.pop("run", None)
        merged.append(row)
    return merged


def measure(lab: TorLab, fake: FakeYouTube, options: Options) -> dict[str, Any]:
    """Both parts on a running lab and fake (the fake's latency is set to ``options.latency``)."""
    latency, fake.latency = fake.latency, options.latency
    try:
        expansion = [
            row for size in options.expand_sizes for row in measure_expansion(lab, fake, size, options.expand_repeat)
        ]
        with tempfile.TemporaryDirectory() as launch_dir:
            lab.tor_wrapper(Path(launch_dir) / "bin")
            # Modes alternate within each round, so a change in the machine's load hits both alike.
            course = [
                run_course(lab, fake, options, mode, run, Path(launch_dir))
                for run in range(1, options.course_repeat + 1)
                for mode in options.modes
            ]
    finally:
        fake.latency = latency
    return {
        "options": asdict(options),
        "expansion": {"rows": expansion, "medians": medians(expansion, "videos", "variant")},
        "course": {"rows": course, "medians": medians(course, "mode")},
    }


def tables(results: dict[str, Any]) -> str:
    expand = [
        "| videos | expansion | runs | pages | requests | KiB | total s | on the exit s | served s | cpu s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["expansion"]["medians"]:
        expand.append(
            f"| {r['videos']:,} | {r['variant']} | {r['runs']} | {r['pages']} | {r['requests']}"
            f" | {r['bytes'] / 1024:.0f} | {r['total_s']:.2f}"
            f" | {r['on_exit_s']:.2f} | {r['served_s']:.2f} | {r['cpu_s']:.2f} |"
        )
    course = [
        "| tor | strategy | runs | complete | N | W | E | C s | F s | wall s | first video s | last video s | expansion s | fetched | exits used | U s | steady videos/s | % of E/C | % of E/(C+U) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: object, fmt: str) -> str:
        return "–" if value is None else format(value, fmt)

    for r in results["course"]["medians"]:
        course.append(
            f"| {r['mode']} | {r['strategy']} | {r['runs']} | {r['complete']} | {r['videos']} | {r['workers']} | {r['exits']} | {r['cooldown_s']:.0f}"
            f" | {r['latency']:.1f} | {r['wall_s']:.1f} | {cell(r['first_video_s'], '.1f')} | {cell(r['last_video_s'], '.1f')}"
            f" | {cell(r['expansion_s'], '.2f')} | {r['fetched']:.0f}"
            f" | {r['exits_used']:.0f} | {cell(r['hold_s'], '.2f')} | {cell(r['steady_rate'], '.3f')}"
            f" | {cell(r['pct_ceiling'], '.0f')} | {cell(r['pct_true_ceiling'], '.0f')} |"
        )
    return "\n".join([*expand, "", *course])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Options()
    parser.add_argument("--expand-sizes", type=int, nargs="+", default=list(defaults.expand_sizes))
    parser.add_argument("--expand-repeat", type=int, default=defaults.expand_repeat)
    parser.add_argument("--videos", type=int, default=defaults.course_videos, help="videos in the course (N)")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--exits", type=int, default=defaults.exits, help="exits of the lab (E)")
    parser.add_argument("--cooldown", type=float, default=defaults.cooldown_s, help="seconds (C)")
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds per video (F)")
    parser.add_argument("--course-repeat", type=int, default=defaults.course_repeat)
    parser.add_argument("--mode", action="append", choices=MODES, help="how the CLI meets tor (default: both)")
    parser.add_argument("--json", type=Path, help="also write every row and the medians here")
    parser.add_argument("--socks-port", type=int, default=DEFAULT_SOCKS_PORT)
    parser.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT)
    parser.add_argument("--port-base", type=int, default=5000, help="TorLab relay ports")
    parser.add_argument("--target-ip", default="127.0.0.1", help="where the fake YouTube listens (:443)")
    args = parser.parse_args(argv)
    options = Options(
        expand_sizes=tuple(args.expand_sizes),
        expand_repeat=args.expand_repeat,
        course_videos=args.videos,
        workers=args.workers,
        exits=args.exits,
        cooldown_s=args.cooldown,
        latency=args.latency,
        course_repeat=args.course_repeat,
        modes=tuple(args.mode or MODES),
    )
    began, load_at_start, measured = time.monotonic(), os.getloadavg(), _commit()  # the code as it starts
    with (
        TorLab(
            exits=options.exits,
            socks_port=args.socks_port,
            control_port=args.control_port,
            port_base=args.port_base,
            target_ip=args.target_ip,
        ) as lab,
        FakeYouTube(host=args.target_ip) as fake,
    ):
        _say(f"lab up in {lab.timings['total']:.1f} s")
        results = measure(lab, fake, options)
    print(tables(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(
                        ["python -m benchmarks.courses", *(argv if argv is not None else sys.argv[1:])]
                    ),
                    "commit": measured,
                    "machine": _machine(),
                    "took_s": time.monotonic() - began,
                    "load_at_start": load_at_start,
                    "load_at_end": os.getloadavg(),
                    **results,
                },
                indent=1,
            )
            + "\n"
        )
    rows = results["course"]["rows"]
    return 0 if all(not r["errors"] and r["fetched"] == r["videos"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
