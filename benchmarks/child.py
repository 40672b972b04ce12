"""Runs one design in a process of its own, so its peak memory (``ru_maxrss``) is its own.

Reads a JSON job on stdin (the control password travels there, not in argv) and prints a
JSON result on stdout: times are seconds from the design's start, memory is in KiB.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stem import CircStatus
from stem.control import EventType
from stem.response.events import CircuitEvent

from yt_study_buddy import TorEndpoint
from yt_study_buddy.app import ClientSettings, Launch, open_client
from yt_study_buddy.tor._control import open_controller

from .designs import DESIGNS, Outcome


def _peak_rss_kib() -> int:
    """The high-water mark of this process's resident memory, in KiB: VmHWM, that of this
    process's own memory. Not ru_maxrss: Linux carries it over exec from the memory the child
    was forked (vforked) with, so it read at least the parent's RSS at the spawn (the
    benchmark's, which grows with the fake's request log)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # no /proc (the lab needs Linux's namespaces anyway)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class CircuitCounter:
    """Counts the circuits tor builds (CIRC BUILT events, tor's own included) while it is open:
    on the real network each is three relays' work, whether its exit is then used or refused.
    Preemptive circuits tor built before the count began are not in it: on a tiny run they
    may carry every isolated video."""

    def __init__(self, endpoint: TorEndpoint) -> None:
        self._controller = open_controller(endpoint)
        self._lock = threading.Lock()
        self.built = 0
        self._controller.events.subscribe(EventType.CIRC, self._on_circ)

    def _on_circ(self, event: CircuitEvent) -> None:
        if event.status == CircStatus.BUILT:
            with self._lock:
                self.built += 1

    def close(self) -> int:
        self._controller.close()
        return self.built


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    design = DESIGNS[job["design"]]
    settings = ClientSettings(
        cooldown_hours=job["cooldown_s"] / 3600,
        rotation=design.strategy,
        ledger_path=Path(job["ledger_path"]),
        ca_bundle=job["ca_path"],
    )
    endpoint = TorEndpoint(**job["endpoint"])
    if design.launch:  # nothing answers there: the wiring launches a tor of our own (on PATH: the lab's)
        os.environ["PATH"] = job["tor_bin_dir"]
        os.environ["XDG_CACHE_HOME"] = job["tor_cache_dir"]
        endpoint = TorEndpoint(socks_port=job["free_ports"][0], control_port=job["free_ports"][1])
    began = time.monotonic()
    with open_client(endpoint, settings, launch=Launch(design.launch)) as client:
        ready_s = time.monotonic() - began
        setup_rss = _peak_rss_kib()
        circuits = CircuitCounter(client.endpoint)
        outcome = Outcome(started=time.monotonic())
        design.run(client, job["videos"], job["workers"], outcome)
        wall = time.monotonic() - outcome.started
        built = circuits.close()
        stats = client.get_status()
    return {
        "ready_s": ready_s,
        "circuits_built": built,
        "strategy": stats["strategy"],
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
