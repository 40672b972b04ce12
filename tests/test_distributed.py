"""The job queue of distributed runs on a real PostgreSQL (test.sh's cluster), without tor:
enqueue's deduplication, status, export, the notes' exactly-once insert, the retry decisions
and the one-line errors. The workers themselves run on the lab (test_distributed_lab.py)."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from tests.test_cli import dead_port, run_cli  # noqa: F401  (a fixture)
from yt_study_buddy._exceptions import FailureKind, FetchFailure, QueueError
from yt_study_buddy.app import _distributed as distributed
from yt_study_buddy.app._distributed import JobOptions, JobQueue
from yt_study_buddy.tor._ledger import PostgresDsn


@pytest.fixture
def queue(postgres_schema: str) -> JobQueue:
    return JobQueue(PostgresDsn(postgres_schema))


def jobs(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return [
            (lock, status)
            for lock, status in conn.execute(
                "SELECT queueing_lock, status::text FROM procrastinate_jobs ORDER BY id"
            ).fetchall()
        ]


def finish(dsn: str, video_id: str, status: str) -> int:
    """Mark a video's job as a worker would have ended it."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "UPDATE procrastinate_jobs SET status = %s WHERE queueing_lock = %s RETURNING id", (status, video_id)
        ).fetchone()
    assert row is not None
    job_id: int = row[0]
    return job_id


def test_enqueue_adds_one_job_per_video_and_never_a_second(queue: JobQueue, postgres_schema: str) -> None:
    first = queue.enqueue(["aaaaaaaaaaa", "bbbbbbbbbbb", "aaaaaaaaaaa"], JobOptions(formats=("md", "srt")))
    assert first.added == ["aaaaaaaaaaa", "bbbbbbbbbbb"] and first.already == []
    again = queue.enqueue(["bbbbbbbbbbb", "ccccccccccc"], JobOptions())
    assert again.added == ["ccccccccccc"] and again.already == ["bbbbbbbbbbb"]
    assert jobs(postgres_schema) == [("aaaaaaaaaaa", "todo"), ("bbbbbbbbbbb", "todo"), ("ccccccccccc", "todo")]
    with psycopg.connect(postgres_schema, connect_timeout=5) as conn:
        (args,) = conn.execute("SELECT args FROM procrastinate_jobs ORDER BY id LIMIT 1").fetchone() or ()
    assert args == {
        "video_id": "aaaaaaaaaaa",
        "formats": ["md", "srt"],
        "languages": ["en"],
        "translate_to": None,
        "max_attempts": 3,
    }


def test_a_running_or_stored_video_is_not_queued_again_but_a_failed_one_is(
    queue: JobQueue, postgres_schema: str
) -> None:
    queue.enqueue(["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"], JobOptions())
    finish(postgres_schema, "aaaaaaaaaaa", "doing")
    done = finish(postgres_schema, "bbbbbbbbbbb", "succeeded")
    assert queue.store_note("bbbbbbbbbbb", "B", {"md": "# B\n"}, "10.0.0.1", "w1", done)
    failed = finish(postgres_schema, "ccccccccccc", "failed")
    failure = FetchFailure(FailureKind.PERMANENT, "transcripts_disabled", "ccccccccccc", "Transcripts are disabled")
    assert queue.record_failure(failed, "ccccccccccc", "10.0.0.2", failure, "w1") == 1
    assert queue.status() == distributed.QueueStatus(
        done=1, running=1, failed=1, pending=0, failures={"ccccccccccc": "Transcripts are disabled"}
    )
    again = queue.enqueue(["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"], JobOptions())
    assert again.added == ["ccccccccccc"] and sorted(again.already) == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    # The queued-again video counts as pending, no longer as failed.
    assert queue.status() == distributed.QueueStatus(done=1, running=1, failed=0, pending=1, failures={})


def test_a_note_is_stored_once_and_exported_as_files(queue: JobQueue, tmp_path) -> None:
    queue.enqueue(["aaaaaaaaaaa"], JobOptions())
    assert queue.store_note("aaaaaaaaaaa", "Lecture 1: heat", {"md": "# one\n", "txt": "one\n"}, "10.0.0.1", "w1", 1)
    assert not queue.store_note("aaaaaaaaaaa", "Lecture 1: heat", {"md": "# two\n"}, "10.0.0.2", "w2", 2)
    written = queue.export(tmp_path / "notes")
    assert sorted(path.name for path in written) == [
        "Lecture 1 - heat [aaaaaaaaaaa].md",
        "Lecture 1 - heat [aaaaaaaaaaa].txt",
    ]
    assert (tmp_path / "notes" / "Lecture 1 - heat [aaaaaaaaaaa].md").read_text() == "# one\n"  # the first worker's


def test_failed_attempts_are_counted_per_job(queue: JobQueue) -> None:
    queue.prepare()
    blocked = FetchFailure(FailureKind.BLOCKED, "ip_blocked", "aaaaaaaaaaa", "YouTube blocks this exit")
    assert [queue.record_failure(7, "aaaaaaaaaaa", f"10.0.0.{n}", blocked, "w") for n in (1, 2)] == [1, 2]
    assert queue.record_failure(8, "aaaaaaaaaaa", "10.0.0.3", blocked, "w") == 1  # queued again: a fresh count


def test_retry_decisions() -> None:
    strategy = distributed._Retry()
    when = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    decision = strategy.get_retry_decision(exception=distributed._RetryAt(when, "no free exit"), job=None)
    assert decision is not None and decision.retry_at == when
    from procrastinate.exceptions import JobAborted

    assert strategy.get_retry_decision(exception=JobAborted(), job=None) is not None  # a stop: back in the queue
    assert strategy.get_retry_decision(exception=distributed._JobFailed("no transcript"), job=None) is None
    assert strategy.get_retry_decision(exception=RuntimeError("a bug"), job=None) is None


def test_status_and_export_need_a_queue(queue: JobQueue, tmp_path) -> None:
    with pytest.raises(QueueError, match=r"^no job queue in postgresql://.* yet: enqueue videos first$"):
        queue.status()
    with pytest.raises(QueueError, match="enqueue videos first"):
        queue.export(tmp_path)


def test_cli_errors_are_one_line_without_the_password(postgres_schema: str, dead_port: int) -> None:
    done = run_cli("status", "--queue", f"postgresql://ytsb:s3cret-pw@127.0.0.1:{dead_port}/ytsb")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "yt-study-buddy: error: cannot reach job queue postgresql://ytsb:[redacted]@127.0.0.1:"
    )
    assert done.stderr.count("\n") == 1 and "s3cret-pw" not in done.stderr
    done = run_cli("status")
    assert (done.returncode, done.stderr) == (
        2,
        "yt-study-buddy: error: no job queue: pass --queue postgresql://USER@HOST/DB (or set YTSB_QUEUE)\n",
    )
    done = run_cli("status", env={"YTSB_LEDGER": postgres_schema})  # the queue defaults to a PostgreSQL ledger
    assert done.returncode == 1 and "enqueue videos first" in done.stderr
    assert run_cli("enqueue", "aaaaaaaaaaa", env={"YTSB_QUEUE": postgres_schema}).returncode == 0
    done = run_cli("status", "--json", env={"YTSB_QUEUE": postgres_schema})
    assert done.returncode == 0 and json.loads(done.stdout) == {
        "done": 0,
        "running": 0,
        "failed": 0,
        "pending": 1,
        "failures": [],
    }
    done = run_cli("status", env={"YTSB_QUEUE": postgres_schema})
    assert done.stdout == "done 0, running 0, failed 0, pending 1\n"


def test_wrong_password_is_refused_in_one_line(postgres_server: str) -> None:
    # test.sh's cluster asks this role for a password (scram-sha-256), and there is none right.
    url = postgres_server.replace("postgresql:///", "postgresql://ytsb_password:s3cret@/").replace("&user=postgres", "")
    done = run_cli("enqueue", "aaaaaaaaaaa", "--queue", url)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("yt-study-buddy: error: job queue postgresql://ytsb_password:[redacted]@/")
    assert "refused us" in done.stderr and "s3cret" not in done.stderr and done.stderr.count("\n") == 1


# -- one job's decisions: the queue is real, tor and YouTube are stand-ins ----------------------


class FakeSession:
    def __init__(self, ip: str) -> None:
        self.exit_ip, self.label, self.outcome, self.closed = ip, None, None, False

    def end_as(self, outcome, reason=None) -> None:
        self.outcome = outcome

    def close(self) -> None:
        self.closed = True


class FakeClient:
    """Hands out sessions on 10.0.0.1, .2, ...; or raises what it is told to."""

    def __init__(self, raises: Exception | None = None) -> None:
        self.raises, self.sessions = raises, []

    def new_session(self, *, timeout: float) -> FakeSession:
        if self.raises is not None:
            raise self.raises
        self.sessions.append(FakeSession(f"10.0.0.{len(self.sessions) + 1}"))
        return self.sessions[-1]


class FakeContext:
    def __init__(self, job_id: int) -> None:
        self.job = type("Job", (), {"id": job_id, "attempts": 0})()

    def should_abort(self) -> bool:
        return False


def fetcher_that(outcome):
    """A stand-in for TorTranscriptFetcher: raises ``outcome`` (a FetchFailure) or returns it."""

    class Fetcher:
        def __init__(self, session) -> None:
            pass

        def fetch_transcript(self, video_id, languages, translate_to=None):
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

    return Fetcher


def job_context(job_id: int) -> Any:
    return FakeContext(job_id)


def make_worker(queue: JobQueue, client: FakeClient, **settings: Any) -> distributed._Worker:
    return distributed._Worker(queue, cast(Any, client), distributed.WorkerSettings(**settings))


JOB_ARGS: dict[str, Any] = {
    "video_id": "aaaaaaaaaaa",
    "formats": ["md", "txt"],
    "languages": ["en"],
    "translate_to": None,
}


def test_a_job_stores_its_note_once_and_a_retried_one_does_not_fetch_again(queue: JobQueue, monkeypatch) -> None:
    from yt_study_buddy.youtube import Snippet, Transcript

    queue.prepare()
    transcript = Transcript("aaaaaaaaaaa", "English", "en", False, (Snippet("hello", 0.0, 1.0),), title="Hello")
    monkeypatch.setattr(distributed, "TorTranscriptFetcher", fetcher_that(transcript))
    client = FakeClient()
    worker = make_worker(queue, client, name="w1")
    worker.run_job(job_context(1), **JOB_ARGS, max_attempts=3)
    assert [(s.exit_ip, s.label, s.closed) for s in client.sessions] == [("10.0.0.1", "aaaaaaaaaaa", True)]
    worker.run_job(job_context(1), **JOB_ARGS, max_attempts=3)  # the same job again, after a crash
    assert len(client.sessions) == 1  # no second exit taken: the note is there
    export = queue.export(Path(tempfile.mkdtemp()))
    assert sorted(p.suffix for p in export) == [".md", ".txt"]
    assert "via Tor exit 10.0.0.1" in next(p for p in export if p.suffix == ".md").read_text()


def test_a_blocked_exit_is_quarantined_and_the_job_queued_again_until_out_of_attempts(
    queue: JobQueue, monkeypatch
) -> None:
    from yt_study_buddy.tor._session import SessionOutcome

    queue.prepare()
    blocked = FetchFailure(FailureKind.BLOCKED, "ip_blocked", "aaaaaaaaaaa", "YouTube blocks this exit")
    monkeypatch.setattr(distributed, "TorTranscriptFetcher", fetcher_that(blocked))
    client = FakeClient()
    worker = make_worker(queue, client, name="w1")
    for _ in range(2):
        with pytest.raises(distributed._RetryAt) as retry:
            worker.run_job(job_context(5), **JOB_ARGS, max_attempts=3)
        assert retry.value.when <= datetime.now(UTC)  # at once, on whichever worker: a fresh exit
    with pytest.raises(distributed._JobFailed, match="YouTube blocks this exit"):
        worker.run_job(job_context(5), **JOB_ARGS, max_attempts=3)
    assert [(s.outcome, s.closed) for s in client.sessions] == [(SessionOutcome.BLOCKED, True)] * 3


def test_a_permanent_failure_fails_the_job_at_once(queue: JobQueue, monkeypatch) -> None:
    queue.prepare()
    gone = FetchFailure(FailureKind.PERMANENT, "video_unavailable", "aaaaaaaaaaa", "The video is no longer available")
    monkeypatch.setattr(distributed, "TorTranscriptFetcher", fetcher_that(gone))
    worker = make_worker(queue, FakeClient(), name="w1")
    with pytest.raises(distributed._JobFailed):
        worker.run_job(job_context(6), **JOB_ARGS, max_attempts=3)


def test_no_free_exit_schedules_the_job_for_when_one_frees_up(queue: JobQueue) -> None:
    from yt_study_buddy._exceptions import ExitsExhausted, TorUnavailable

    queue.prepare()
    free_at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    worker = make_worker(queue, FakeClient(ExitsExhausted("no fresh exit", free_at)))
    with pytest.raises(distributed._RetryAt) as retry:
        worker.run_job(job_context(7), **JOB_ARGS, max_attempts=3)
    assert retry.value.when == free_at
    worker = make_worker(queue, FakeClient(TorUnavailable("tor is gone")))
    with pytest.raises(distributed._RetryAt) as retry:
        worker.run_job(job_context(7), **JOB_ARGS, max_attempts=3)
    assert datetime.now(UTC) < retry.value.when < datetime.now(UTC) + distributed.OUTAGE_RETRY * 2
