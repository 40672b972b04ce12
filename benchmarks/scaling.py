"""What the small benchmarks of how a cost grows share: best-of timing and the two-size report.

Each measures its steps at a small and a large size and reports the ratio per step (the
planning of a URL file, the search index); times are never asserted, only printed and saved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path


def best_of(repeat: int, step: Callable[[], object], before: Callable[[], object] | None = None) -> float:
    """The fastest of ``repeat`` runs of ``step`` (``before`` runs untimed ahead of each)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def main(
    description: str | None, measure: Callable[[int, int], dict[str, float]], unit: str, sizes: tuple[int, int]
) -> None:
    """Parse ``--sizes``/``--repeat``/``--json``, measure both sizes, print a table of the ratios."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=list(sizes), metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per step")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    small, large = args.sizes
    results = {size: measure(size, args.repeat) for size in (small, large)}
    ratios = {step: results[large][step] / results[small][step] for step in results[small]}
    print(f"| step | {small:,} {unit} s | {large:,} {unit} s | ratio |")
    print("|---|---|---|---|")
    for step, ratio in ratios.items():
        print(f"| {step} | {results[small][step]:.4f} | {results[large][step]:.4f} | {ratio:.1f} |")
    if args.json:
        summary = {"sizes": [small, large], "seconds": {str(k): v for k, v in results.items()}, "ratios": ratios}
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"worst ratio {max(ratios.values()):.1f} for {large / small:g}x the {unit}", file=sys.stderr)
