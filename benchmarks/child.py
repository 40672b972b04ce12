"""Runs one design in a process of its own, so its peak memory (``ru_maxrss``) is its own.

Reads a JSON job on stdin (the control password travels there, not in argv) and prints a
JSON result on stdout: times are seconds from the design's start, memory is in KiB.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from yt_study_buddy import TorEndpoint
from yt_study_buddy.app import ClientSettings, Launch, open_client

from .designs import DESIGNS, Outcome


def _peak_rss_kib() -> int:
    # Linux reports ru_maxrss in KiB: the high-water mark of this process's resident memory.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    design = DESIGNS[job["design"]]
    settings = ClientSettings(
        cooldown_hours=job["cooldown_s"] / 3600,
        rotation=design.strategy,
        ledger_path=Path(job["ledger_path"]),
        ca_bundle=job["ca_path"],
    )
    with open_client(TorEndpoint(**job["endpoint"]), settings, launch=Launch(False)) as client:
        setup_rss = _peak_rss_kib()
        outcome = Outcome(started=time.monotonic())
        design.run(client, job["videos"], job["workers"], outcome)
        wall = time.monotonic() - outcome.started
        stats = client.get_status()
    return {
        "wall": wall,
        "first_fetch": outcome.first_fetch,
        "finished": sorted(outcome.finished),
        "errors": outcome.errors,
        "setup_rss_kib": setup_rss,
        "peak_rss_kib": _peak_rss_kib(),
        "allocated": stats["allocated"],
        "rejected": stats["rejected"],
        "moved": stats["moved"],
    }


def main() -> None:
    print(json.dumps(run_job(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
