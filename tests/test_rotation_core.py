"""The rotation core on a real private Tor network and the fake YouTube: unique checked exits,
cooldowns from last use, cross-process safety, block handling, NEWNYM pacing, pinning, stop."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import stem
from stem import Signal
from stem.control import EventType

from tests.conftest import readline_within
from yt_study_buddy import (
    ExitsExhausted,
    FailureKind,
    FetchFailure,
    QueueStopped,
    RotatingTorClient,
    SingleTorCoordinator,
    TorEndpoint,
    TorExitNodePool,
    TorIPQueue,
    TorSession,
    TorTranscriptFetcher,
    TorUnavailable,
)
from yt_study_buddy.testing.fake_youtube import Behavior
from yt_study_buddy.tor._client import BUILD_FAILURE_LIMIT, PREPARE_AHEAD, TRANSPORT_FAILURE_LIMIT
from yt_study_buddy.tor._rotation import NEWNYM_INTERVAL

#: The start of tor's notice when it defers a NEWNYM (MAX_SIGNEWNYM_RATE).
RATE_LIMITED = "Rate limiting NEWNYM"

pytestmark = pytest.mark.lab


@pytest.fixture
def make_client(lab, fake_youtube, tmp_path):
    """Clients on the lab sharing one fresh ledger per test; all closed at the end."""
    clients = []

    def make(**options):
        options.setdefault("ledger_path", tmp_path / "ledger.sqlite3")
        client = RotatingTorClient(endpoint=lab.endpoint, ca_bundle=str(fake_youtube.ca_path), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def video_ids(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:03d}".ljust(11, "x")[:11] for i in range(n)]


def exits_by_video(fake, ids):
    """The exit IPs the fake YouTube saw per video (watch, player, timedtext and oEmbed)."""
    seen: dict[str, set[str]] = {vid: set() for vid in ids}
    for request in fake.requests:
        if request.video_id in seen:
            seen[request.video_id].add(request.client_ip)
    return seen


def test_nine_videos_three_workers_nine_distinct_exits(make_client, fake_youtube, lab):
    client = make_client()
    ids = video_ids(9, "nine")
    fetched: dict[str, tuple[str, list[str]]] = {}
    with TorIPQueue(client, target_size=9) as queue:
        assert queue.get_stats()["queue_size"] == 9  # start() blocked until all 9 were ready
        work = list(ids)
        lock = threading.Lock()

        def worker(number):
            while True:
                with lock:
                    if not work:
                        return
                    vid = work.pop()
                exit_ip, session, proxies = queue.get_next_connection(worker_id=number, timeout=60)
                assert proxies["https"].startswith("socks5h://")
                with session:
                    transcript = TorTranscriptFetcher(
                        session=session, proxies=proxies, exit_ip=exit_ip
                    ).fetch_transcript(vid)
                    used = session.exits_used()
                assert transcript.snippets and transcript.title
                fetched[vid] = (exit_ip, used)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert sorted(fetched) == sorted(ids)
    seen = exits_by_video(fake_youtube, ids)
    for vid, (exit_ip, used) in fetched.items():
        assert seen[vid] == {exit_ip}, f"{vid}: the server saw {seen[vid]}, we checked {exit_ip}"
        assert used == [exit_ip]  # tor's own stream events agree
    assert len({exit_ip for exit_ip, _ in fetched.values()}) == 9
    assert set().union(*seen.values()) <= set(lab.exit_ips)


def test_cooldown_runs_from_last_use_then_frees_the_exits(make_client, lab):
    client = make_client(cooldown_hours=6 / 3600, max_rotation_attempts=100)
    probe = make_client(cooldown_hours=6 / 3600, max_rotation_attempts=6)  # same ledger, few tries
    first = [client.new_session() for _ in range(len(lab.exit_ips))]
    assert len({s.exit_ip for s in first}) == len(lab.exit_ips)
    with pytest.raises(ExitsExhausted):  # all reserved: nothing fresh
        probe.new_session()
    time.sleep(7)  # longer than the cooldown, but the exits are still in use: still not free
    with pytest.raises(ExitsExhausted):
        probe.new_session()
    released_at = datetime.now(UTC)
    for session in first:
        session.close()
    state = client.ledger.state(first[0].exit_ip)
    assert state is not None and state.last_used_at >= released_at.replace(microsecond=0)
    with pytest.raises(ExitsExhausted) as raised:  # cooling from the release, not the reservation
        probe.new_session()
    free_at = raised.value.earliest_free_at
    assert free_at is not None and free_at > released_at
    time.sleep(max(0.0, (free_at - datetime.now(UTC)).total_seconds()) + 0.5)
    again = client.new_session()
    assert again.exit_ip in {s.exit_ip for s in first}
    again.close()


def test_a_session_is_prepared_while_its_exit_cools_and_leased_only_after(make_client, lab):
    """The last cooling second of an exit is used to build and check its circuit, so the session
    is ready when the exit frees up; the lease itself is never taken before the cooldown ends."""
    client = make_client(strategy="pin", cooldown_hours=3 / 3600)
    held = [client.new_session() for _ in range(len(lab.exit_ips))]  # every exit taken
    last = held.pop()
    last.close()  # cools for 3 s from now
    state = client.ledger.state(last.exit_ip)
    assert state is not None and state.free_at is not None
    with pytest.raises(ExitsExhausted) as raised:  # nothing free for 3 s; ask again a second early
        client.new_session()
    free_at, retry_at = raised.value.earliest_free_at, raised.value.retry_at
    assert free_at == state.free_at and retry_at == free_at - timedelta(seconds=PREPARE_AHEAD)
    time.sleep(max(0.0, (retry_at - datetime.now(UTC)).total_seconds()))
    session = client.new_session()
    assert session.exit_ip == last.exit_ip
    session.close()
    [use] = [record for record in client.ledger.history(exit_ip=last.exit_ip) if record.lease_id][:1]
    assert use.reserved_at is not None and use.reserved_at >= state.free_at
    for other in held:
        other.close()


def test_a_second_run_within_the_cooldown_avoids_the_first_runs_exits(make_client):
    first_client = make_client()
    first = [first_client.new_session() for _ in range(4)]
    first_ips = {s.exit_ip for s in first}
    for session in first:
        session.close()
    second_client = make_client()  # same ledger file, as a second run would have
    second = [second_client.new_session() for _ in range(4)]
    assert not first_ips & {s.exit_ip for s in second}
    for session in second:
        session.close()


def test_taken_exits_are_refused_before_their_exit_check(make_client, fake_youtube, lab):
    """tor's choice of exit is known once the check's connection opens: an exit the ledger
    refuses costs neither a TLS handshake nor an echo request."""
    client = make_client(max_rotation_attempts=200)
    held = [client.new_session() for _ in range(len(lab.exit_ips) - 3)]
    fake_youtube.reset()
    last = [client.new_session() for _ in range(3)]
    assert len({s.exit_ip for s in held + last}) == len(lab.exit_ips)
    echoes = [entry.client_ip for entry in fake_youtube.requests if entry.path.startswith("/api/ip")]
    assert echoes == [s.exit_ip for s in last], f"{client.stats['rejected']} refused"
    for session in held + last:
        session.close()


ALLOCATE = """
import json, sys
from pathlib import Path
from yt_study_buddy import RotatingTorClient, TorEndpoint
endpoint = TorEndpoint(control_password={password!r})
with RotatingTorClient(endpoint=endpoint, ledger_path=Path({ledger!r}), ca_bundle={ca!r}) as client:
    sessions = [client.new_session() for _ in range(5)]
    print(json.dumps([s.exit_ip for s in sessions]), flush=True)
    sys.stdin.read()  # hold the exits until the parent says so
    for s in sessions:
        s.close()
"""


def test_two_processes_on_one_ledger_share_no_exit(lab, fake_youtube, tmp_path):
    script = ALLOCATE.format(
        password=lab.endpoint.control_password, ledger=str(tmp_path / "shared.sqlite3"), ca=str(fake_youtube.ca_path)
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        results = [json.loads(readline_within(proc.stdout, 120, "an allocating process")) for proc in procs]
    finally:
        for proc in procs:
            proc.communicate("", timeout=60)
    assert all(proc.returncode == 0 for proc in procs)
    assert len(results[0]) == len(results[1]) == 5
    assert not set(results[0]) & set(results[1])


def test_a_blocked_exit_is_quarantined_and_the_video_retried_elsewhere(make_client, fake_youtube, tmp_path):
    import io

    from yt_study_buddy.app._batch import BatchOptions, BatchRunner
    from yt_study_buddy.app._progress import PlainReporter
    from yt_study_buddy.app._run_log import RunLog

    client = make_client()
    blocked_vid, permanent_vid, fine_vid = video_ids(3, "blk")
    fake_youtube.script(Behavior.RECAPTCHA, video_id=blocked_vid, times=1)
    fake_youtube.script(Behavior.TRANSCRIPTS_DISABLED, video_id=permanent_vid)
    runner = BatchRunner(
        client,
        BatchOptions(output_dir=tmp_path / "notes", workers=2),
        reporter=PlainReporter(io.StringIO()),
        run_log=RunLog(tmp_path / "runs.jsonl"),
    )
    summary = runner.run([blocked_vid, permanent_vid, fine_vid])
    results = {r.video_id: r for r in summary.results}
    blocked = results[blocked_vid]
    assert blocked.status == "fetched" and blocked.attempts == 2
    first_exit = next(r.client_ip for r in fake_youtube.requests if r.video_id == blocked_vid)
    assert blocked.exit_ip != first_exit
    state = client.ledger.state(first_exit)
    assert state.quarantined_until is not None and state.quarantined_until > datetime.now(UTC)
    permanent = results[permanent_vid]
    assert permanent.status == "failed" and permanent.attempts == 1
    assert permanent.error_kind == "permanent" and permanent.error_reason == "transcripts_disabled"
    assert len([r for r in fake_youtube.requests if r.video_id == permanent_vid and r.path.startswith("/watch")]) == 1
    assert results[fine_vid].status == "fetched" and Path(results[fine_vid].files[0]).exists()
    assert summary.exit_code == 1


def test_fetcher_reports_failure_classes_without_rotating(make_client, fake_youtube):
    client = make_client()
    vid = video_ids(1, "cls")[0]
    fake_youtube.script(Behavior.BOT_CHECK, video_id=vid)
    with client.session() as session:
        fetcher = TorTranscriptFetcher(session=session)
        with pytest.raises(FetchFailure) as raised:
            fetcher.fetch_transcript(vid)
        assert raised.value.kind is FailureKind.BLOCKED
        assert fetcher.attempts == 1 and fetcher.exits_tried == [session.exit_ip]
        blocked_ip = session.exit_ip
    assert client.ledger.state(blocked_ip).quarantined_until is not None


@pytest.mark.timeout(180)  # about 10 s per NEWNYM, and two more for tor's own notice below
def test_newnym_strategy_never_signals_faster_than_tor_honours(make_client, lab):
    client = make_client(strategy="newnym")
    log_file = lab.workdir / "client" / "notice.log"
    honoured: list[str] = []  # tor's SIGNAL NEWNYM events, as a controller of our own sees them
    watcher = lab.controller()
    watcher.add_event_listener(lambda event: honoured.append(event.signal), EventType.SIGNAL)

    def wait_for_newnyms(count: int) -> None:
        deadline = time.monotonic() + 2 * NEWNYM_INTERVAL
        while honoured.count(Signal.NEWNYM) < count:
            assert time.monotonic() < deadline, "tor never applied a NEWNYM"
            time.sleep(0.1)

    try:
        sessions = [client.new_session()]  # its NEWNYM may wait for another test's recent one
        log_before, sent_before = len(log_file.read_text()), len(client.strategy.signals_sent)
        honoured_before = honoured.count(Signal.NEWNYM)
        sessions += [client.new_session() for _ in range(2)]
        sent = client.strategy.signals_sent
        assert len(sent) - sent_before >= 2
        assert all(b - a >= 10.0 for a, b in itertools.pairwise(sent))
        # Tor applied every NEWNYM sent, and deferred none of them.
        assert honoured.count(Signal.NEWNYM) - honoured_before >= len(sent) - sent_before
        assert RATE_LIMITED not in log_file.read_text()[log_before:]

        # ... where a deferral shows on this tor as that notice, or the check above would pass
        # whatever tor logs: a NEWNYM right after an applied one is deferred (and waited for,
        # so that it does not land in the next test).
        first = honoured.count(Signal.NEWNYM)
        watcher.signal(Signal.NEWNYM)  # applied now, or deferred after the strategy's last one
        wait_for_newnyms(first + 1)
        log_after = len(log_file.read_text())
        watcher.signal(Signal.NEWNYM)  # right after an applied one: deferred
        wait_for_newnyms(first + 2)
        assert RATE_LIMITED in log_file.read_text()[log_after:]
    finally:
        watcher.close()
    for session in sessions:
        session.close()


def test_pinned_exits_are_the_ones_used_and_attachment_is_handed_back(make_client, fake_youtube, lab):
    client = make_client(strategy="pin")
    controller = lab.controller()
    try:
        assert controller.get_conf("__LeaveStreamsUnattached") == "1"
        sessions = [client.new_session() for _ in range(3)]
        for session in sessions:
            assert lab.exit_fingerprints[session.exit.fingerprint] == session.exit_ip
            vid = video_ids(1, f"pin{session.exit_ip[-2:]}")[0]
            TorTranscriptFetcher(session=session).fetch_transcript(vid)
            assert exits_by_video(fake_youtube, [vid])[vid] == {session.exit_ip}
            session.close()
        client.close()
        assert controller.get_conf("__LeaveStreamsUnattached") == "0"
    finally:
        controller.close()


def test_stop_wakes_waiting_workers_and_ends_the_allocator(make_client, lab):
    client = make_client(max_rotation_attempts=4)
    for ip in lab.exit_ips:
        client.ledger.quarantine(ip, reason="test", duration=timedelta(minutes=30))
    queue = TorIPQueue(client, target_size=3)
    queue.start(wait=False)
    errors: list[BaseException] = []

    def worker():
        try:
            queue.get_next_connection(timeout=120)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    # Every exit is quarantined: the allocators run out of tries and wait for one to free up.
    deadline = time.monotonic() + 90
    while queue.get_stats()["waiting_until"] is None and queue.get_stats()["failed_attempts"] < 1:
        assert time.monotonic() < deadline, "the allocators never found every exit unavailable"
        time.sleep(0.2)
    queue.stop()
    for thread in threads:
        thread.join(10)  # they would wait 120 s for an exit: only stop() can end them this soon
    assert not any(t.is_alive() for t in threads)
    assert len(errors) == 3 and all(isinstance(e, QueueStopped) for e in errors)  # woken, not timed out
    assert queue.get_stats()["allocators_running"] == 0


def test_exhaustion_fails_fast_when_asked(make_client, lab):
    client = make_client(max_rotation_attempts=4)
    for ip in lab.exit_ips:
        client.ledger.quarantine(ip, reason="test")
    queue = TorIPQueue(client, target_size=1, on_exhausted="fail")
    queue.start(wait=False)
    with pytest.raises(ExitsExhausted) as raised:
        queue.get_next_connection(timeout=60)
    assert raised.value.earliest_free_at is not None
    queue.stop()


def test_requests_interface_uses_a_fresh_exit_per_call(make_client, fake_youtube):
    client = make_client()
    ips = [client.get("https://check.torproject.org/api/ip").json()["IP"] for _ in range(3)]
    assert len(set(ips)) == 3


def deprecated(factory):
    """Build a deprecated shim, asserting it warns (stem's own warnings are not ours to judge)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = factory()
    assert any(issubclass(w.category, DeprecationWarning) and "TorIPQueue" in str(w.message) for w in caught)
    return made


def test_deprecated_shims_warn_and_work(lab, fake_youtube, tmp_path):
    options = {
        "ledger_path": tmp_path / "ledger.sqlite3",
        "ca_bundle": str(fake_youtube.ca_path),
        "tor_control_password": lab.endpoint.control_password,
    }
    coordinator = deprecated(lambda: SingleTorCoordinator(**options))
    try:
        with coordinator.acquire(worker_id=1) as fetcher:
            assert fetcher.fetch_transcript(video_ids(1, "shim")[0]).snippets
    finally:
        coordinator.close()
    pool = deprecated(lambda: TorExitNodePool(pool_size=2, **options))
    try:
        with pool.acquire(worker_id=1) as first, pool.acquire(worker_id=2) as second:
            assert first.exit_ip != second.exit_ip
            assert pool.get_stats()["all_unique"] and pool.get_stats()["in_use"] == 2
            with pytest.raises(TimeoutError):
                pool.get_connection(timeout=0.2)
    finally:
        pool.close()


def test_nothing_listening_is_a_clear_error(tmp_path):
    nothing = TorEndpoint(socks_port=1, control_port=2)
    with pytest.raises(TorUnavailable, match="SOCKS port"):
        RotatingTorClient(endpoint=nothing, ledger_path=tmp_path / "l.sqlite3")


def test_sessions_that_waited_too_long_are_checked_again_before_use(make_client, fake_youtube):
    client = make_client()
    with TorIPQueue(client, target_size=2, lookahead=2, max_session_age=0.0) as queue:
        checks_before = len([r for r in fake_youtube.requests if r.path == "/api/ip"])
        exit_ip, session, _ = queue.get_next_connection(timeout=60)
        with session:
            checks_after = len([r for r in fake_youtube.requests if r.path == "/api/ip"])
            assert checks_after == checks_before + 1  # re-checked on a new connection at hand-out
            assert [r.client_ip for r in fake_youtube.requests if r.path == "/api/ip"][-1] == exit_ip
            vid = video_ids(1, "aged")[0]
            TorTranscriptFetcher(session=session).fetch_transcript(vid)
        assert exits_by_video(fake_youtube, [vid])[vid] == {exit_ip}


def failing_builds(client, monkeypatch, failures: int) -> list[str]:
    """Make the client's first ``failures`` pinned builds fail as tor's build timeout does; the
    exits they were tried through, in order. The pauses between failed builds are cut short."""
    monkeypatch.setattr("yt_study_buddy.tor._client.BUILD_PAUSE", 0.01)
    controller = client.strategy._controller
    real_build = controller.new_circuit
    tried: list[str] = []

    def new_circuit(path, **kwargs):
        if len(tried) < failures:
            tried.append(path[-1])
            raise stem.CircuitExtensionFailed("Circuit failed to be created: TIMEOUT")
        return real_build(path, **kwargs)

    monkeypatch.setattr(controller, "new_circuit", new_circuit)
    return tried


def test_timed_out_pinned_builds_move_on_to_other_exits(make_client, lab, monkeypatch):
    client = make_client(strategy="pin")
    tried = failing_builds(client, monkeypatch, BUILD_FAILURE_LIMIT - 1)  # more than TRANSPORT_FAILURE_LIMIT
    session = client.new_session()
    try:
        assert len(set(tried)) == len(tried) == BUILD_FAILURE_LIMIT - 1 > TRANSPORT_FAILURE_LIMIT
        assert session.exit.fingerprint not in tried
        assert client.stats["build_failures"] == len(tried)
    finally:
        session.close()


def test_pinned_builds_that_keep_failing_still_call_tor_unusable(make_client, lab, monkeypatch):
    client = make_client(strategy="pin")
    tried = failing_builds(client, monkeypatch, 1000)
    with pytest.raises(TorUnavailable, match=f"tor built none of {BUILD_FAILURE_LIMIT} circuits in a row"):
        client.new_session()
    # Each through another of the lab's exits, then it failed closed.
    assert len(set(tried)) == len(tried) == BUILD_FAILURE_LIMIT < len(lab.exit_fingerprints)


def test_the_shared_tls_context_still_refuses_an_untrusted_certificate(make_client, lab):
    """Sessions share one TLS context per trust bundle (tests/test_tor_session.py); the lab's CA
    is in the client's, and not in certifi's, which a session without ``ca_bundle`` uses."""
    trusting = make_client().new_session()  # its exit check went over TLS to the fake
    trusting.close()
    untrusting = TorSession(lab.endpoint, username=f"ytsb-untrusting-{time.monotonic_ns()}")
    try:
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.get("https://www.youtube.com/api/ip")
    finally:
        untrusting.close()
