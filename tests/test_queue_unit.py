"""TorIPQueue's logic with a fake client: hand-out, re-check, exhaustion, errors and stop.

No tor and no network: these run in milliseconds. The lab tests check the same queue on real tor.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from tests.fake_client import WAIT, FakeClient
from yt_study_buddy._exceptions import ExitsExhausted, QueueStopped, TorError
from yt_study_buddy.tor._queue import TorIPQueue

IPS = [f"10.0.0.{n}" for n in range(1, 10)]


def test_hands_out_each_session_once_then_says_all_were_handed_out():
    client = FakeClient(IPS)
    with TorIPQueue(client, target_size=3, lookahead=2) as exits:
        taken = [exits.get_next_connection(n, timeout=WAIT) for n in range(3)]
        with pytest.raises(QueueStopped, match="all 3 sessions were handed out"):
            exits.get_next_connection(timeout=WAIT)
    assert [ip for ip, _, _ in taken] == IPS[:3]
    assert [proxies for _, _, proxies in taken] == [s.proxies for s in client.made]
    assert len(client.made) == 3  # never more than the target


def test_start_waits_for_the_lookahead_only():
    client = FakeClient(IPS)
    exits = TorIPQueue(client, target_size=9, lookahead=2)
    exits.start(timeout=WAIT)
    try:
        assert exits.get_stats()["queue_size"] >= 2 and len(client.made) < 9
    finally:
        exits.stop()


def test_a_stale_session_that_fails_its_recheck_is_replaced():
    client = FakeClient(IPS, stale={IPS[0]})
    with TorIPQueue(client, target_size=2, lookahead=2) as exits:
        first = exits.get_next_connection(timeout=WAIT)[0]
        second = exits.get_next_connection(timeout=WAIT)[0]
    assert [s.exit_ip for s in client.revalidated] == [IPS[0]]
    assert (first, second) == (IPS[1], IPS[2])  # the stale one is never handed out


def test_exhaustion_with_fail_reaches_the_workers():
    client = FakeClient(IPS[:1])
    with TorIPQueue(client, target_size=2, lookahead=1, on_exhausted="fail") as exits:
        assert exits.get_next_connection(timeout=WAIT)[0] == IPS[0]
        with pytest.raises(ExitsExhausted):
            exits.get_next_connection(timeout=WAIT)


def test_exhaustion_longer_than_the_wait_allowed_fails():
    later = datetime.now(UTC) + timedelta(hours=2)
    client = FakeClient([], free_at=later)
    exits = TorIPQueue(client, target_size=1, max_exhausted_wait=60)
    with pytest.raises(ExitsExhausted) as raised:
        exits.start(timeout=WAIT)
    exits.stop()
    assert raised.value.earliest_free_at == later


def test_exhaustion_waits_for_the_first_exit_to_cool_down():
    client = FakeClient([], free_at=datetime.now(UTC))  # free "now": retried at once
    exits = TorIPQueue(client, target_size=1, lookahead=1, allocators=1)
    exits.start(wait=False)
    try:
        threading.Thread(target=_add_after_exhausted, args=(client,), daemon=True).start()
        assert exits.get_next_connection(timeout=WAIT)[0] == "10.9.9.9"
        assert exits.get_stats()["failed_attempts"] >= 1 and client.exhausted >= 1
    finally:
        exits.stop()


def _add_after_exhausted(client: FakeClient) -> None:
    for _ in range(int(WAIT / 0.01)):
        if client.exhausted:
            client.add_exits("10.9.9.9")
            return
        threading.Event().wait(0.01)


def test_a_tor_error_reaches_start_and_every_worker():
    client = FakeClient([], error=TorError("tor went away"))
    exits = TorIPQueue(client, target_size=3)
    with pytest.raises(TorError, match="tor went away"):
        exits.start(timeout=WAIT)
    with pytest.raises(TorError, match="tor went away"):
        exits.get_next_connection(timeout=WAIT)
    exits.stop()


def test_stop_wakes_a_waiting_worker_and_cancels_unused_sessions():
    gate = threading.Event()
    client = FakeClient(IPS, gate=gate)
    exits = TorIPQueue(client, target_size=4, lookahead=4, allocators=1)
    exits.start(wait=False)
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            exits.get_next_connection(timeout=WAIT)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    exits.stop(timeout=0)  # the allocator is held at the gate: nothing is ready
    thread.join(WAIT)
    gate.set()
    assert not thread.is_alive() and len(outcome) == 1 and isinstance(outcome[0], QueueStopped)
    exits.stop(timeout=WAIT)
    with pytest.raises(QueueStopped, match="queue stopped"):
        exits.get_next_connection(timeout=WAIT)
    # The session the allocator finished after stop() is cancelled, not left holding its exit.
    assert all(s.outcome == "cancelled" and s.closed.is_set() for s in client.made)


def test_ready_sessions_nobody_took_are_cancelled_on_stop():
    client = FakeClient(IPS)
    exits = TorIPQueue(client, target_size=3, lookahead=3)
    exits.start(timeout=WAIT)
    exits.stop(timeout=WAIT)
    assert len(client.made) == 3
    assert all(s.outcome == "cancelled" and s.closed.is_set() for s in client.made)


def test_a_timeout_is_a_timeout_error():
    gate = threading.Event()
    exits = TorIPQueue(FakeClient(IPS, gate=gate), target_size=1)
    exits.start(wait=False)
    try:
        with pytest.raises(TimeoutError, match="no exit ready within 0.01 s"):
            exits.get_next_connection(timeout=0.01)
    finally:
        gate.set()
        exits.stop(timeout=WAIT)


def test_add_target_makes_a_session_for_a_retry():
    client = FakeClient(IPS)
    with TorIPQueue(client, target_size=1, lookahead=2) as exits:
        exits.get_next_connection(timeout=WAIT)
        exits.add_target(1)
        assert exits.get_next_connection(timeout=WAIT)[0] == IPS[1]
        with pytest.raises(QueueStopped, match="all 2 sessions"):
            exits.get_next_connection(timeout=WAIT)


@pytest.mark.parametrize(("strategy", "allocators"), [("isolate", 3), ("newnym", 1)])
def test_newnym_gets_one_allocator_the_others_three(strategy, allocators):
    gate = threading.Event()
    client = FakeClient(IPS, strategy=strategy, gate=gate)
    exits = TorIPQueue(client, target_size=9, lookahead=9)
    exits.start(wait=False)
    try:
        assert exits.get_stats()["allocators_running"] == allocators
    finally:
        gate.set()
        exits.stop(timeout=WAIT)
