"""Time for ``TorIPQueue(client, 9).start()`` to have 9 unique, checked exits, per strategy.

Run inside a loopback-only namespace:
    python -m yt_study_buddy.testing jail -- python -m benchmarks.allocation [--videos 9] [--exits 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from yt_study_buddy import TorIPQueue
from yt_study_buddy.app import ClientSettings, Launch, open_client
from yt_study_buddy.testing.fake_youtube import FakeYouTube
from yt_study_buddy.testing.network import TorLab


def allocate(lab: TorLab, fake: FakeYouTube, strategy: str, videos: int, ledger: Path) -> tuple[float, int]:
    """Seconds until ``videos`` sessions are ready, and how many distinct exits they hold."""
    settings = ClientSettings(rotation=strategy, ca_bundle=str(fake.ca_path), ledger_path=ledger)
    with open_client(lab.endpoint, settings, launch=Launch(False)) as client:
        started = time.monotonic()
        queue = TorIPQueue(client, target_size=videos, lookahead=videos)
        try:
            queue.start()
            took = time.monotonic() - started
            # Each ready session holds a lease on its own exit in the ledger.
            exits = len({state.exit_ip for state in client.ledger.unavailable() if state.reserved_by})
        finally:
            queue.stop()  # unused sessions are cancelled: no cooldown
    return took, exits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=9)
    parser.add_argument("--exits", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3, help="runs per fast strategy (newnym runs once)")
    parser.add_argument("--json", type=Path, help="also write every run and the medians here")
    args = parser.parse_args()
    results = {}
    with TorLab(exits=args.exits) as lab, FakeYouTube() as fake, tempfile.TemporaryDirectory() as tmp:
        print(f"lab with {args.exits} exits ready in {lab.timings['total']:.1f} s")
        for strategy in ("isolate", "pin", "newnym"):
            runs = [
                allocate(lab, fake, strategy, args.videos, Path(tmp) / f"{strategy}-{n}.sqlite3")
                for n in range(1 if strategy == "newnym" else args.repeat)
            ]
            times = [took for took, _ in runs]
            results[strategy] = {
                "seconds": times,
                "median_s": statistics.median(times),
                "distinct_exits": min(e for _, e in runs),
            }
            print(
                f"{strategy:8} {args.videos} unique exits in {statistics.median(times):6.2f} s "
                f"(median of {len(runs)}: {', '.join(f'{t:.2f}' for t in times)}; "
                f"distinct exits {min(e for _, e in runs)})"
            )
    if args.json:
        args.json.write_text(json.dumps({"videos": args.videos, "exits": args.exits, "strategies": results}, indent=1))


if __name__ == "__main__":
    main()
