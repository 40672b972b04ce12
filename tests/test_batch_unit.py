"""BatchRunner's logic with a fake client and a fake fetcher: retry, permanent failures,
exhaustion, tor failing and stop(). No tor and no network; the lab tests run the real chain."""

from __future__ import annotations

import io

import pytest

from tests.fake_client import FakeClient
from yt_study_buddy._exceptions import TorError
from yt_study_buddy._settings import run_log_path
from yt_study_buddy.app import _batch
from yt_study_buddy.app._batch import BatchOptions, BatchRunner
from yt_study_buddy.app._progress import PlainReporter
from yt_study_buddy.app._run_log import RunLog, VideoStatus
from yt_study_buddy.youtube._failures import FailureKind, FetchFailure
from yt_study_buddy.youtube._transcripts import Snippet, Transcript

IPS = [f"10.0.0.{n}" for n in range(1, 20)]
VIDEOS = ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"]


class FakeFetcher:
    """Stands in for TorTranscriptFetcher: ``script[video]`` lists what each attempt does."""

    script: dict[str, list[object]] = {}
    seen: list[tuple[str, str]] = []  # (video, exit ip) per attempt

    def __init__(self, session: object) -> None:
        self.session = session

    def fetch_transcript(self, video_id: str, languages: object, translate_to: object = None) -> Transcript:
        FakeFetcher.seen.append((video_id, self.session.exit_ip))  # type: ignore[attr-defined]
        steps = FakeFetcher.script.get(video_id, [])
        step = steps.pop(0) if steps else None
        if callable(step):
            step = step()
        if isinstance(step, BaseException):
            raise step
        return Transcript(video_id, "English", "en", False, (Snippet("hello", 0.0, 1.0),), title=f"T {video_id}")


@pytest.fixture(autouse=True)
def fake_fetcher(monkeypatch):
    FakeFetcher.script, FakeFetcher.seen = {}, []
    monkeypatch.setattr(_batch, "TorTranscriptFetcher", FakeFetcher)


def runner(tmp_path, client, **options) -> BatchRunner:
    opts = BatchOptions(output_dir=tmp_path / "notes", **{"workers": 1, **options})
    return BatchRunner(
        client, opts, reporter=PlainReporter(io.StringIO()), run_log=RunLog(run_log_path(opts.output_dir))
    )


def failure(kind: FailureKind, reason: str) -> FetchFailure:
    return FetchFailure(kind, reason, "x", f"{reason} happened")


def results(run: BatchRunner) -> dict[str, object]:
    return {vid: result.status for vid, result in run._results.items()}


def test_every_video_is_fetched_on_its_own_exit_and_its_note_written(tmp_path):
    run = runner(tmp_path, FakeClient(IPS), workers=2)
    summary = run.run(VIDEOS)
    assert (summary.fetched, summary.failed, run.stopped_because) == (3, 0, None)
    assert len({ip for _, ip in FakeFetcher.seen}) == 3
    notes = list((tmp_path / "notes").glob("*.md"))
    assert len(notes) == 3 and all("hello" in note.read_text() for note in notes)
    assert RunLog.read(run.run_log.path)[-1]["event"] == "run_end"


def test_a_blocked_exit_is_retried_on_a_fresh_exit(tmp_path):
    FakeFetcher.script = {VIDEOS[0]: [failure(FailureKind.BLOCKED, "ip_blocked")]}
    run = runner(tmp_path, FakeClient(IPS))
    run.run(VIDEOS[:1])
    result = run._results[VIDEOS[0]]
    assert (result.status, result.attempts) == (VideoStatus.FETCHED, 2)
    assert result.exits_used == IPS[:2] and result.exit_ip == IPS[1]


def test_a_permanent_failure_is_not_retried(tmp_path):
    FakeFetcher.script = {VIDEOS[0]: [failure(FailureKind.PERMANENT, "video_unavailable")]}
    run = runner(tmp_path, FakeClient(IPS))
    summary = run.run(VIDEOS[:1])
    result = run._results[VIDEOS[0]]
    assert (summary.failed, result.status, result.attempts, result.error_reason) == (
        1,
        VideoStatus.FAILED,
        1,
        "video_unavailable",
    )


def test_attempts_are_bounded_by_max_attempts(tmp_path):
    FakeFetcher.script = {VIDEOS[0]: [failure(FailureKind.RETRYABLE, "timeout")] * 5}
    run = runner(tmp_path, FakeClient(IPS), max_attempts=2)
    run.run(VIDEOS[:1])
    result = run._results[VIDEOS[0]]
    assert (result.status, result.attempts) == (VideoStatus.FAILED, 2) and "(after 2 attempts)" in (result.error or "")


def test_no_fresh_exit_fails_the_rest_as_exhausted(tmp_path):
    run = runner(tmp_path, FakeClient(IPS[:1]), exit_wait=1.0)  # no free time known: waits 30 s > 1 s
    summary = run.run(VIDEOS)
    assert summary.fetched == 1 and summary.failed == 2
    assert {r.error_kind for r in run._results.values() if r.status == VideoStatus.FAILED} == {"exhausted"}


def test_tor_failing_stops_the_run_and_leaves_the_rest_pending(tmp_path):
    run = runner(tmp_path, FakeClient(IPS[:1], error=TorError("control port closed")))
    run.run(VIDEOS)
    assert run.stopped_because == "tor became unusable (TorError)"
    assert results(run) == {
        VIDEOS[0]: VideoStatus.FETCHED,
        VIDEOS[1]: VideoStatus.PENDING,
        VIDEOS[2]: VideoStatus.PENDING,
    }
    assert RunLog.read(run.run_log.path)[-1]["pending"] == VIDEOS[1:]


def test_stop_lets_the_video_in_flight_finish_and_reports_the_rest_pending(tmp_path):
    run = runner(tmp_path, FakeClient(IPS))
    FakeFetcher.script = {VIDEOS[0]: [lambda: run.stop("the user had enough")]}
    run.run(VIDEOS)
    assert run.stopped_because == "the user had enough"
    assert results(run) == {
        VIDEOS[0]: VideoStatus.FETCHED,
        VIDEOS[1]: VideoStatus.PENDING,
        VIDEOS[2]: VideoStatus.PENDING,
    }
    assert run._results[VIDEOS[1]].error == "not fetched: the user had enough"


def test_a_stale_exit_is_rechecked_and_replaced_before_a_video_uses_it(tmp_path):
    client = FakeClient(IPS, stale={IPS[0]})
    run = runner(tmp_path, client)
    run.run(VIDEOS[:1])
    assert [s.exit_ip for s in client.revalidated] == [IPS[0]]
    assert FakeFetcher.seen == [(VIDEOS[0], IPS[1])]
