"""Distributed runs on the lab: two workers, each on a tor client of its own joined to the private
network, sharing one PostgreSQL (queue, ledger, notes). Real procrastinate, real tor, real
PostgreSQL, the fake YouTube; the workers are real ``yt-study-buddy worker`` processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from tests.test_cli import run_cli
from tests.test_exit_ledger import own_postgres  # noqa: F401  (a fixture)
from yt_study_buddy.tor._endpoint import TorEndpoint
from yt_study_buddy.tor._launcher import launch_tor

pytestmark = pytest.mark.lab

COOLDOWN = 2.0  # seconds
HEARTBEAT = 1.0  # a worker silent for 3 s is taken for dead
CONCURRENCY = 4  # jobs at once per worker


@pytest.fixture(scope="module")
def worker_tors(lab, tmp_path_factory) -> Iterator[list[TorEndpoint]]:
    """Two tor clients of the lab, one per worker (as two machines would have)."""
    root = tmp_path_factory.mktemp("worker-tors")
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(launch_tor, data_dir=root / name, extra_config=lab.client_config(), timeout=90) for name in "ab"
        ]
        tors = [future.result() for future in futures]
    try:
        yield [tor.endpoint for tor in tors]
    finally:
        for tor in tors:
            tor.stop()


class Worker:
    """A ``yt-study-buddy worker`` process on one of the worker tors; its output in a file."""

    def __init__(self, name: str, endpoint: TorEndpoint, queue: str, fake, tmp_path: Path) -> None:
        self.name = name
        self.log = tmp_path / f"worker-{name}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "yt_study_buddy",
                    "worker",
                    "--queue",
                    queue,
                    "--name",
                    name,
                    "--concurrency",
                    str(CONCURRENCY),
                    "--heartbeat",
                    str(HEARTBEAT),
                    "--cooldown-hours",
                    str(COOLDOWN / 3600),
                    "--tor-socks",
                    f"{endpoint.socks_host}:{endpoint.socks_port}",
                    "--tor-control",
                    f"{endpoint.control_host}:{endpoint.control_port}",
                    "--ca-bundle",
                    str(fake.ca_path),
                    "--state-dir",
                    str(tmp_path / f"state-{name}"),
                    "--no-launch-tor",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, and its exit status (bounded)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"worker {self.name} did not stop on SIGTERM:\n{self.output()[-3000:]}")


def one(queue: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(queue, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(condition, workers: list[Worker], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except psycopg.OperationalError:
            pass  # the server is being restarted
        for worker in workers:
            assert worker.process.poll() is None, f"worker {worker.name} ended:\n{worker.output()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} within {timeout:g} s; " + "\n".join(
            w.output()[-2000:] for w in workers
        )
        time.sleep(0.2)


def video_ids(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{n:03d}".ljust(11, "x")[:11] for n in range(count)]


def enqueue(queue: str, ids: list[str]) -> None:
    done = run_cli("enqueue", "--queue", queue, *ids)
    assert done.returncode == 0, done.stderr
    assert f"{len(ids)} videos queued, 0 already done or queued" in done.stderr


def uses_by_exit(fake) -> dict[str, list[tuple[str, float, float]]]:
    """Each exit's uses in order: (video id, first request, last answer) from the fake's log."""
    uses: dict[str, list[list]] = defaultdict(list)
    for request in sorted(fake.requests, key=lambda r: r.time):
        if request.video_id is None:
            continue
        runs = uses[request.client_ip]
        if runs and runs[-1][0] == request.video_id:
            runs[-1][2] = max(runs[-1][2], request.answered or request.time)
        else:
            runs.append([request.video_id, request.time, request.answered or request.time])
    return {ip: [(run[0], run[1], run[2]) for run in runs] for ip, runs in uses.items()}


def assert_no_exit_reused_within_cooldown(fake) -> None:
    for ip, uses in uses_by_exit(fake).items():
        for (prev_vid, _, prev_end), (vid, start, _) in itertools.pairwise(uses):
            assert start - prev_end >= COOLDOWN - 0.05, f"exit {ip}: {vid} {start - prev_end:.2f} s after {prev_vid}"


def status(queue: str) -> dict:
    done = run_cli("status", "--queue", queue, "--json")
    assert done.returncode == 0, done.stderr
    result: dict = json.loads(done.stdout)
    return result


@pytest.mark.timeout(300)
def test_two_workers_share_the_exits_and_a_killed_one_loses_nothing(
    lab, fake_youtube, worker_tors, postgres_schema, tmp_path
):
    blocked = lab.exit_ips[:2]
    for ip in blocked:
        fake_youtube.block_exit(ip)
    ids = video_ids(60, "dist")
    enqueue(postgres_schema, ids)
    assert "60 already done or queued" in run_cli("enqueue", "--queue", postgres_schema, *ids).stderr  # deduplicated
    a = Worker("a", worker_tors[0], postgres_schema, fake_youtube, tmp_path)
    b = Worker("b", worker_tors[1], postgres_schema, fake_youtube, tmp_path)
    workers = [a, b]
    try:
        # Kill worker a while it holds a job, once both have stored some notes.
        wait_until(
            lambda: (
                one(postgres_schema, "SELECT count(DISTINCT worker) FROM ytsb_notes")[0][0] == 2
                and one(
                    postgres_schema,
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND worker_id IN (SELECT j.worker_id "
                    "FROM procrastinate_jobs j JOIN ytsb_notes n ON n.job_id = j.id WHERE n.worker = 'a')",
                )[0][0]
                > 0
            ),
            workers,
            "both workers storing notes, a with a job in hand",
            timeout=120,
        )
        a.process.kill()
        a.process.wait(timeout=10)
        workers = [b]
        wait_until(
            lambda: one(postgres_schema, "SELECT count(*) FROM ytsb_notes")[0][0] == 60,
            workers,
            "every note stored",
            timeout=150,
        )
        wait_until(lambda: status(postgres_schema)["done"] == 60, workers, "every job done", timeout=30)
        assert b.stop() == 0, b.output()[-3000:]
    finally:
        for worker in (a, b):
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=10)
    assert status(postgres_schema) == {"done": 60, "running": 0, "failed": 0, "pending": 0, "failures": []}
    notes = dict(one(postgres_schema, "SELECT video_id, worker FROM ytsb_notes"))
    assert sorted(notes) == sorted(ids) and set(notes.values()) == {"a", "b"}
    assert "was left by a silent worker: queued again" in b.output()
    # Every video's transcript was served; twice only for the jobs the killed worker held.
    served = defaultdict(int)
    for request in fake_youtube.requests:
        if request.video_id and request.path.startswith("/api/timedtext") and request.outcome == "ok":
            served[request.video_id] += 1
    assert set(served) == set(ids)
    assert sum(count - 1 for count in served.values()) <= CONCURRENCY, {v: c for v, c in served.items() if c > 1}
    assert_no_exit_reused_within_cooldown(fake_youtube)
    uses = uses_by_exit(fake_youtube)
    for ip in blocked:  # quarantined after its one use, by whichever worker used it
        assert len(uses.get(ip, [])) <= 1, uses[ip]
    # The notes come out as files, one per video.
    done = run_cli("export", "--queue", postgres_schema, "--output", str(tmp_path / "notes"))
    assert done.returncode == 0, done.stderr
    files = sorted(path.name for path in (tmp_path / "notes").glob("*.md"))
    assert len(files) == 60 and all(any(f"[{vid}]" in name for name in files) for vid in ids)


@pytest.mark.timeout(240)
def test_workers_reconnect_after_postgresql_restarts(lab, fake_youtube, worker_tors, own_postgres, tmp_path):
    queue = own_postgres.dsn
    ids = video_ids(16, "pgrs")
    enqueue(queue, ids)
    workers = [Worker(name, tor, queue, fake_youtube, tmp_path) for name, tor in zip("cd", worker_tors, strict=True)]
    try:
        wait_until(lambda: one(queue, "SELECT count(*) FROM ytsb_notes")[0][0] >= 3, workers, "some notes", timeout=90)
        own_postgres.stop()
        time.sleep(2)
        own_postgres.start()
        at_restart = one(queue, "SELECT count(*) FROM ytsb_notes")[0][0]
        wait_until(
            lambda: one(queue, "SELECT count(*) FROM ytsb_notes")[0][0] == len(ids),
            workers,
            "every note stored after the restart",
            timeout=150,
        )
        wait_until(lambda: status(queue)["done"] == len(ids), workers, "every job done", timeout=60)
        assert [worker.stop() for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=10)
    assert status(queue) == {"done": len(ids), "running": 0, "failed": 0, "pending": 0, "failures": []}
    assert sorted(video for (video,) in one(queue, "SELECT video_id FROM ytsb_notes")) == sorted(ids)
    assert at_restart < len(ids)  # the workers stored the rest after the restart, without being restarted
    assert all("Traceback" not in worker.output() for worker in workers), workers[0].output()


def test_enqueue_expands_a_course_through_tor_into_one_job_per_video(lab, fake_youtube, postgres_schema, tmp_path):
    from tests.conftest import LAB_PASSWORD
    from yt_study_buddy.testing.fake_youtube import fake_playlist

    playlist = fake_playlist(5, seed="dist-course")
    fake_youtube.add_course(playlist)
    single = "distsingle1"
    tor = ["--tor-password", LAB_PASSWORD, "--ca-bundle", str(fake_youtube.ca_path), "--no-launch-tor"]
    done = run_cli("enqueue", "--queue", postgres_schema, "-I", "1-3", playlist.course_id, single, "--json", *tor)
    assert done.returncode == 0, done.stderr
    wanted = [video.video_id for video in playlist.videos[:3]] + [single]
    assert json.loads(done.stdout) == {"added": wanted, "already": []}
    assert [
        lock for (lock,) in one(postgres_schema, "SELECT queueing_lock FROM procrastinate_jobs ORDER BY id")
    ] == wanted
    # Expanded on a checked lab exit, recorded in the shared ledger (the queue's database).
    [(exit_ip, label)] = one(postgres_schema, "SELECT exit_ip, video_id FROM history")
    assert exit_ip in lab.exit_ips and playlist.course_id in label
    assert {request.client_ip for request in fake_youtube.requests if request.video_id is None} >= {exit_ip}
