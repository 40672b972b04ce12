"""The benchmark's tiny scenario end to end: every design fetches every video, each through
its own exit, and the report has its columns. No timing assertions: shared machines vary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(360)  # its own lab, five designs, one launching a tor (the run allows 300 s)
def test_smoke_scenario_fetches_everything_through_distinct_exits(tmp_path):
    out = tmp_path / "smoke.json"
    # Its own lab beside the session's: other client ports, relay ports and fake YouTube address.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--scenario",
            "smoke",
            "--json",
            str(out),
            "--socks-port",
            "9250",
            "--control-port",
            "9251",
            "--port-base",
            "6000",
            "--target-ip",
            "127.0.0.2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]

    report = json.loads(out.read_text())
    columns = report["columns"]  # (key, title, format) of each table column
    rows = report["scenarios"][0]["rows"]
    assert [row["design"] for row in rows] == ["before", "after", "default", "isolate", "pin"]
    for row in rows:
        assert {key for key, _, _ in columns} <= row.keys()
        assert row["errors"] == [], row["design"]
        assert row["fetched"] == row["videos"] == row["exits_used"], row["design"]
        assert row["mixed"] == 0, row["design"]
        assert row["echo_checks"] >= row["allocated"], row["design"]  # each session was checked
        # Counted from tor's CIRC events. Two isolated videos may both ride tor's preemptive
        # circuits, built before the count began; NEWNYM and pin always build their own.
        if row["strategy"] != "isolate":
            assert row["circuits_built"] > 0, row["design"]
    assert report["commit"] and report["machine"]["cpus"]
    assert [m["runs"] for m in report["medians"]] == [1, 1, 1, 1, 1]
    # As installed, no tor running: the client launched its own, and auto chose pin on it.
    assert [row["strategy"] for row in rows] == ["newnym", "newnym", "pin", "isolate", "pin"]
    assert done.stdout.splitlines()[0] == "| " + " | ".join(title for _, title, _ in columns) + " |"


@pytest.mark.timeout(180)  # two tiny expansions and a 3-video course on the session's lab
def test_courses_benchmark_expands_and_fetches_a_tiny_course(lab, fake_youtube):
    from benchmarks.courses import Options, measure, tables

    # The shared tor only: a launched tor's bootstrap would double the cost, and the smoke test
    # above already runs the benchmarks' launching design.
    options = Options(
        expand_sizes=(5, 150),
        expand_repeat=1,
        course_videos=3,
        workers=2,
        latency=0.0,
        course_repeat=1,
        modes=("shared",),
    )
    results = measure(lab, fake_youtube, options)  # on the session's lab and fake: no lab of its own
    # One page; two pages. Each: the page, yt-dlp's reload "with unavailable videos", the
    # continuations; one exit per expansion, and every byte counted from the fake's log.
    assert [
        (r["videos"], r["variant"], r["pages"], r["requests"], r["exits"]) for r in results["expansion"]["rows"]
    ] == [
        (5, "ours", 1, 2, 1),
        (5, "processed", 1, 2, 1),
        (150, "ours", 2, 3, 1),
        (150, "processed", 2, 3, 1),
    ]
    assert all(r["bytes"] > 0 and r["cpu_s"] > 0 for r in results["expansion"]["rows"])
    [row] = results["course"]["rows"]
    assert (row["mode"], row["strategy"], row["returncode"], row["errors"]) == ("shared", "isolate", 0, [])
    assert row["fetched"] == row["exits_used"] == row["index_links"] == 3
    assert row["videos_on_several_exits"] == 0 and row["expansion_s"] is not None
    assert row["steady_rate"] is None  # 3 videos on 12 exits: no exit had to be reused
    assert [m["runs"] for m in results["course"]["medians"]] == [1]
    assert "| videos | expansion | runs | pages | requests |" in tables(results)
