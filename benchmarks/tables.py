"""Every table the docs quote, printed from a results file of the full run (``benchmarks.run``).

    .venv/bin/python -m benchmarks.tables [benchmarks/results.json]

No lab and no network: it only reads the file, so a figure in README.md, docs/ or
benchmarks/README.md can be checked against the run that produced it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .courses import tables as course_tables
from .report import markdown_table

#: Startup rows: (title, tree summary key) in the order benchmarks/README.md shows them.
STARTUP_ROWS = (
    ("no tor running: tor start (launch decided -> bootstrapped)", "launched_tor_launch_s"),
    ("no tor running: first request (exit check)", "launched_first_request_s"),
    ("no tor running: first fetch", "launched_first_fetch_s"),
    ("no tor running: first note", "launched_first_note_s"),
    ("no tor running: exit", "launched_exit_s"),
    ("running tor: first request (exit check)", "running_first_request_s"),
    ("running tor: first fetch", "running_first_fetch_s"),
    ("running tor: first note", "running_first_note_s"),
    ("running tor: exit", "running_exit_s"),
    ("import, wall", "import_s"),
    ("import, CPU", "import_cpu_s"),
    ("command CPU, running tor", "running_cpu_s"),
    ("command CPU, no tor running", "launched_cpu_s"),
)


def scaling_table(result: dict[str, Any], unit: str) -> str:
    small, large = result["sizes"]
    lines = [f"| step | {small:,} {unit} s | {large:,} {unit} s | ratio |", "|---|---|---|---|"]
    for step, ratio in result["ratios"].items():
        seconds = [result["seconds"][str(size)][step] for size in (small, large)]
        lines.append(f"| {step} | {seconds[0]:.4f} | {seconds[1]:.4f} | {ratio:.1f} |")
    return "\n".join(lines)


def startup_table(result: dict[str, Any]) -> str:
    baseline, current = result["medians"]["baseline"], result["medians"]["current"]
    lines = [f"| | {result['baseline']} s | {result['commit']} s | ratio |", "|---|---|---|---|"]
    for title, key in STARTUP_ROWS:
        before, after = baseline.get(key), current.get(key)
        ratio = f"{after / before:.2f}" if before and after is not None else "–"
        lines.append(f"| {title} | {_cell(before, '.3f')} | {_cell(after, '.3f')} | {ratio} |")
    return "\n".join(lines)


def descriptors_table(early: dict[str, Any] | None, lazy: dict[str, Any] | None) -> str:
    lines = ["| client | windows | longest s | total s |", "|---|---|---|---|"]
    for title, result in (("early fetching (the lab's)", early), ("`--lazy` (tor's default schedule)", lazy)):
        if result:
            lines.append(f"| {title} | {result['windows']} | {result['max_window_s']} | {result['total_window_s']} |")
    return "\n".join(lines)


def allocation_table(result: dict[str, Any]) -> str:
    lines = [f"| strategy | {result['videos']} unique exits ready in s | runs s |", "|---|---|---|"]
    for strategy, found in result["strategies"].items():
        runs = ", ".join(f"{s:.2f}" for s in found["seconds"])
        lines.append(f"| `{strategy}` | {found['median_s']:.2f} | {runs} |")
    return "\n".join(lines)


def distributed_table(result: dict[str, Any]) -> str:
    lines = [
        "| design | wall s | steady videos/s | % of E/C | % of E/(C+U) | U s | exits used |",
        "|---|---|---|---|---|---|---|",
    ]
    for design, m in result["medians"].items():
        lines.append(
            f"| {design} | {m['wall_s']:.1f} | {m['steady_videos_per_s']:.3f} | {m['pct_of_e_over_c']:.0f}"
            f" | {m['pct_of_e_over_c_plus_u']:.0f} | {m['u_s']:.2f} | {m['exits_used']:.0f} |"
        )
    lines.append(f"\ntwo workers over one, steady rate: {result['two_over_one_steady']}")
    return "\n".join(lines)


def course_runs_table(result: dict[str, Any]) -> str:
    """Every course run (the medians would hide a run that stopped)."""
    lines = [
        "| tor | run | load before | fetched | wall s | first video s | last video s | steady videos/s | % of E/C | % of E/(C+U) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["course"]["rows"]:
        lines.append(
            f"| {r['mode']} ({r['strategy']}) | {r['run']} | {r['load_before']:.1f} | {r['fetched']} | {r['wall_s']:.1f}"
            f" | {_cell(r['first_video_s'], '.1f')} | {_cell(r['last_video_s'], '.1f')}"
            f" | {_cell(r['steady_rate'], '.3f')} | {_cell(r['pct_ceiling'], '.0f')} | {_cell(r['pct_true_ceiling'], '.0f')} |"
        )
    return "\n".join(lines)


def _cell(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def render(results: dict[str, Any]) -> str:
    """Markdown: the scenarios' medians, then each suite the run holds (a failed one says so)."""
    suites = results.get("suites", {})

    def result(name: str) -> dict[str, Any] | None:
        return (suites.get(name) or {}).get("result")

    sections = [f"commit {results['commit']}, load {results['load_at_start'][0]:.1f} at the start"]
    if results.get("medians"):
        sections.append("## scenarios\n\n" + markdown_table(results["medians"]))
    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "planning": lambda r: scaling_table(r, "lines"),
        "search": lambda r: scaling_table(r, "notes"),
        "allocation": allocation_table,
        "startup": startup_table,
        "courses": lambda r: course_tables(r) + "\n\n" + course_runs_table(r),
        "distributed": distributed_table,
    }
    for name, done in suites.items():
        if done["error"]:
            sections.append(f"## {name}: failed\n\n{done['error']} ({done['command']})")
    if result("descriptors") or result("descriptors-lazy"):
        sections.append("## descriptors\n\n" + descriptors_table(result("descriptors"), result("descriptors-lazy")))
    for name, renderer in renderers.items():
        found = result(name)
        if found:
            sections.append(f"## {name}\n\n{renderer(found)}")
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="?", default=Path(__file__).with_name("results.json"))
    args = parser.parse_args(argv)
    print(render(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
