"""One row per run: what the child measured, what the fake YouTube saw, and the ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from yt_study_buddy.testing.fake_youtube import SORRY_OUTCOME, LoggedRequest, RateLimit

from .scenarios import Scenario

#: Row key, table header, and format ("" = as is); every row carries every key (None = n/a).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("scenario", "scenario", ""),
    ("design", "design", ""),
    ("runs", "runs", ""),
    ("videos", "N", ""),
    ("workers", "W", ""),
    ("latency", "F s", ".2f"),
    ("exits", "E", ""),
    ("cooldown_s", "C s", ".0f"),
    ("wall", "wall s", ".1f"),
    ("first_fetch", "first fetch s", ".2f"),
    ("fetched", "fetched", ""),
    ("exits_used", "exits used", ""),
    ("mixed", "videos on >1 exit", ""),
    ("allocated", "sessions made", ""),
    ("rejected", "exits refused", ""),
    ("echo_checks", "echo requests", ""),
    ("blocked", "blocked requests", ""),
    ("limit", "limit s", ".1f"),
    ("x_limit", "x limit", ".2f"),
    ("circuits_per_video", "circuits / video", ".2f"),
    ("hold_s", "U s", ".2f"),
    ("steady_rate", "steady videos/s", ".3f"),
    ("pct_ceiling", "% of E/C", ".0f"),
    ("pct_true_ceiling", "% of E/(C+U)", ".0f"),
    ("peak_rss_mib", "peak RSS MiB", ".1f"),
    ("rss_growth_mib", "RSS growth MiB", ".1f"),
)


def exits_by_video(requests: Iterable[LoggedRequest], videos: Sequence[str]) -> dict[str, set[str]]:
    """The client IPs (exits) the fake saw for each video of the run."""
    seen: dict[str, set[str]] = {video: set() for video in videos}
    for request in requests:
        if request.video_id in seen:
            seen[request.video_id].add(request.client_ip)
    return seen


def hold_time(requests: Iterable[LoggedRequest], videos: Collection[str]) -> float | None:
    """Median seconds a video holds its exit: its first request's arrival to its last answer."""
    spans: dict[str, list[float]] = {}
    for request in requests:
        if request.video_id is not None and request.video_id in videos:
            end = request.answered if request.answered is not None else request.time
            span = spans.setdefault(request.video_id, [request.time, end])
            span[0], span[1] = min(span[0], request.time), max(span[1], end)
    return statistics.median(end - start for start, end in spans.values()) if spans else None


def blocked_requests(requests: Iterable[LoggedRequest], limit: RateLimit | None) -> int | None:
    """Requests the fake answered with its rate limit's block, the sorry page included; None
    when the scenario has no rate limit."""
    if limit is None:
        return None
    blocked = {limit.behavior.outcome, SORRY_OUTCOME}
    return sum(1 for request in requests if request.outcome in blocked)


def steady_rate(finished: Sequence[float], exits: int) -> float | None:
    """Videos per second after the first ``exits`` (which need no cooldown), or None."""
    if len(finished) <= exits:
        return None
    span = finished[-1] - finished[exits - 1]
    return (len(finished) - exits) / span if span > 0 else None


def make_row(
    scenario: Scenario,
    design: str,
    videos: Sequence[str],
    build_s: float,
    result: dict[str, Any],
    requests: Iterable[LoggedRequest],
) -> dict[str, Any]:
    """A table row; ``result`` is the child's JSON (or ``{"error": ...}``)."""
    n, w = len(videos), scenario.workers
    limit = math.ceil(n / w) * scenario.latency + build_s
    requests = list(requests)
    seen = exits_by_video(requests, videos)
    wall = result.get("wall")
    rate = steady_rate(result.get("finished", []), scenario.exits) if scenario.reuses_exits else None
    ceiling = scenario.exits / scenario.cooldown_s if scenario.reuses_exits and scenario.cooldown_s else None
    # The cooldown runs from the end of a video's use, so an exit serves one video per C + U.
    hold = hold_time(requests, set(videos))
    true_ceiling = scenario.exits / (scenario.cooldown_s + hold) if ceiling and hold is not None else None
    fetched = len(result.get("finished", []))
    circuits = result.get("circuits_built")
    peak, setup = result.get("peak_rss_kib"), result.get("setup_rss_kib")
    return {
        "scenario": scenario.name,
        "design": design,
        "runs": 1,
        "videos": n,
        "workers": w,
        "latency": scenario.latency,
        "exits": scenario.exits,
        "cooldown_s": scenario.cooldown_s,
        "wall": wall,
        "first_fetch": result.get("first_fetch"),
        "fetched": fetched,
        "exits_used": len(set().union(*seen.values())) if seen else 0,
        "mixed": sum(1 for ips in seen.values() if len(ips) > 1),
        "allocated": result.get("allocated"),
        "rejected": result.get("rejected"),
        "echo_checks": sum(1 for request in requests if request.path.startswith("/api/ip")),
        "blocked": blocked_requests(requests, scenario.rate_limit),
        "limit": limit,
        "x_limit": wall / limit if wall is not None else None,
        "circuits_built": circuits,
        "circuits_per_video": circuits / fetched if circuits is not None and fetched else None,
        "hold_s": hold,
        "steady_rate": rate,
        "pct_ceiling": 100 * rate / ceiling if rate is not None and ceiling else None,
        "pct_true_ceiling": 100 * rate / true_ceiling if rate is not None and true_ceiling else None,
        "peak_rss_mib": peak / 1024 if peak is not None else None,
        "rss_growth_mib": (peak - setup) / 1024 if peak is not None and setup is not None else None,
        "errors": result.get("errors", []) + ([result["error"]] if "error" in result else []),
    }


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    return format(value, fmt) if fmt else str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_cell(row[key], fmt) for key, _, fmt in COLUMNS) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def median_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per scenario, design and N: the median of each number over its runs."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["design"], row["videos"]), []).append(row)
    medians = []
    for runs in groups.values():
        merged = dict(runs[0], runs=len(runs), errors=[e for run in runs for e in run["errors"]])
        for key, _, _ in COLUMNS:
            values = [run[key] for run in runs if isinstance(run[key], int | float)]
            if key != "runs" and values:
                merged[key] = statistics.median(values)
        medians.append(merged)
    return medians
