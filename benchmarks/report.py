"""One row per run: what the child measured, what the fake YouTube saw, and the ratios."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from yt_study_buddy.testing.fake_youtube import LoggedRequest

from .scenarios import Scenario

#: Row key, table header, and format ("" = as is); every row carries every key (None = n/a).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("scenario", "scenario", ""),
    ("design", "design", ""),
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
    ("limit", "limit s", ".1f"),
    ("x_limit", "x limit", ".2f"),
    ("steady_rate", "steady videos/s", ".3f"),
    ("pct_ceiling", "% of E/C", ".0f"),
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
    peak, setup = result.get("peak_rss_kib"), result.get("setup_rss_kib")
    return {
        "scenario": scenario.name,
        "design": design,
        "videos": n,
        "workers": w,
        "latency": scenario.latency,
        "exits": scenario.exits,
        "cooldown_s": scenario.cooldown_s,
        "wall": wall,
        "first_fetch": result.get("first_fetch"),
        "fetched": len(result.get("finished", [])),
        "exits_used": len(set().union(*seen.values())) if seen else 0,
        "mixed": sum(1 for ips in seen.values() if len(ips) > 1),
        "allocated": result.get("allocated"),
        "rejected": result.get("rejected"),
        "echo_checks": sum(1 for request in requests if request.path.startswith("/api/ip")),
        "limit": limit,
        "x_limit": wall / limit if wall is not None else None,
        "steady_rate": rate,
        "pct_ceiling": 100 * rate / ceiling if rate is not None and ceiling else None,
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
