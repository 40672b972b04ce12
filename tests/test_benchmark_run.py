"""The full run's suites: each is called as its own module and lands in the run's file, a
failing or hung one is reported and turns the exit status, never lost. No timing assertions."""

from __future__ import annotations

import json

from benchmarks import run, tables
from benchmarks.run import Suite, run_suite

TINY_PLANNING = Suite("planning", ("--sizes", "20", "200", "--repeat", "1"), 120)


def test_a_suite_runs_as_its_module_and_its_json_is_kept():
    done = run_suite("planning", TINY_PLANNING)
    assert done["status"] == 0 and done["error"] is None
    assert done["command"] == "python -m benchmarks.planning --sizes 20 200 --repeat 1"
    assert set(done["result"]["ratios"]) == {"read", "done", "plan", "run", "claim"}


def test_a_failing_suite_is_reported_with_its_status():
    done = run_suite("planning", TINY_PLANNING, ("--sizes", "not-a-number"))
    assert done["status"] == 2 and done["error"] == "exit 2" and done["result"] is None


def test_a_suite_past_its_timeout_is_stopped_and_reported():
    done = run_suite("search", Suite("search", ("--sizes", "200", "400"), 0.5))
    assert done["status"] is None and done["error"] == "timed out after 0.5 s" and done["result"] is None


def test_the_run_writes_the_suites_it_was_asked_for_and_no_scenario(tmp_path, monkeypatch):
    monkeypatch.setitem(run.SUITES, "planning", TINY_PLANNING)
    out = tmp_path / "results.json"
    assert run.main(["--suite", "planning", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["suites"]) == ["planning"] and report["scenarios"] == []
    assert report["suites"]["planning"]["result"]["sizes"] == [20, 200]
    # The docs' tables are printed from that file.
    assert "## planning\n\n| step | 20 lines s | 200 lines s | ratio |" in tables.render(report)


def test_the_run_fails_when_a_suite_does(tmp_path, monkeypatch):
    monkeypatch.setitem(run.SUITES, "planning", Suite("planning", ("--sizes", "x"), 60))
    out = tmp_path / "results.json"
    assert run.main(["--suite", "planning", "--json", str(out)]) == 1
    assert "## planning: failed\n\nexit 2 (python -m benchmarks.planning --sizes x)" in tables.render(
        json.loads(out.read_text())
    )
