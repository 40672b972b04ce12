"""The pin strategy's own logic, without tor: a pinned circuit that tor could not build counts
against its exit first, against tor only when builds keep failing (the lab tests in
test_rotation_core.py drive a real client), and the consensus is read once, not per allocator."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import stem

from yt_study_buddy import CircuitBuildFailed, TorError
from yt_study_buddy.tor._client import (
    BUILD_FAILURE_LIMIT,
    BUILD_MAX_PAUSE,
    BUILD_PAUSE,
    TRANSPORT_FAILURE_LIMIT,
    FailureCount,
)
from yt_study_buddy.tor._rotation import PinStrategy

TIMEOUT = "Circuit failed to be created: TIMEOUT"


def test_exit_checks_blame_tor_after_the_limit_in_a_row():
    failures = FailureCount()
    assert [failures.check_failed() for _ in range(TRANSPORT_FAILURE_LIMIT)] == [False] * (
        TRANSPORT_FAILURE_LIMIT - 1
    ) + [True]
    failures = FailureCount()
    for _ in range(TRANSPORT_FAILURE_LIMIT - 1):
        assert not failures.check_failed()
    failures.checked()
    assert not failures.check_failed()


def test_failed_builds_count_less_than_failed_checks_and_a_built_circuit_clears_them():
    assert BUILD_FAILURE_LIMIT > TRANSPORT_FAILURE_LIMIT
    failures = FailureCount()
    results = [failures.build_failed(f"EXIT{n}") for n in range(BUILD_FAILURE_LIMIT)]
    assert results == [False] * (BUILD_FAILURE_LIMIT - 1) + [True]
    failures = FailureCount()
    for n in range(BUILD_FAILURE_LIMIT - 1):
        assert not failures.build_failed(f"EXIT{n}")
    failures.built()
    assert not failures.build_failed("EXIT")
    # A built circuit says nothing about exit checks, nor a carried check about builds.
    failures = FailureCount()
    for _ in range(TRANSPORT_FAILURE_LIMIT - 1):
        failures.check_failed()
    failures.built()
    assert failures.check_failed()


def test_exits_whose_build_failed_are_avoided_then_tried_again_once_nothing_else_is_free():
    failures = FailureCount()
    failures.build_failed("A")
    failures.build_failed("B")
    failures.build_failed("A")
    assert failures.failed_exits == {"A", "B"}
    assert failures.retry_failed_exits()
    assert failures.failed_exits == set()
    assert not failures.retry_failed_exits()  # nothing failed since: the round is over
    assert failures.builds == 3  # trying them again does not forgive them


class Controller:
    """Just what PinStrategy asks of a controller, with builds that fail as scripted."""

    def __init__(self, exits: list[str], error: Exception) -> None:
        flags = ["Running", "Valid"]
        self.relays = [SimpleNamespace(fingerprint=fp, flags=[*flags, "Exit"]) for fp in exits]
        self.relays += [SimpleNamespace(fingerprint=f"G{n}", flags=[*flags, "Guard"]) for n in range(2)]
        self.error = error
        self.paths: list[list[str]] = []
        self.consensus_reads = 0
        self.read_takes = 0.0

    def get_network_statuses(self, default):
        self.consensus_reads += 1
        time.sleep(self.read_takes)  # parsing a real consensus takes a while
        return self.relays

    def new_circuit(self, path, *, await_build, timeout):
        self.paths.append(path)
        raise self.error


def pin_strategy(controller: Controller) -> PinStrategy:
    strategy = PinStrategy()
    strategy._controller = controller  # type: ignore[assignment]  # attach() would subscribe to events
    return strategy


def test_a_build_tor_gave_up_on_names_its_exit_and_frees_it():
    controller = Controller(["X1"], stem.CircuitExtensionFailed(TIMEOUT))
    strategy = pin_strategy(controller)
    for _ in range(2):  # the only exit is free again after each failure
        with pytest.raises(CircuitBuildFailed, match="TIMEOUT") as caught:
            strategy.next_identity("u", avoid=(), timeout=5)
        assert caught.value.exit_fingerprint == "X1"
    assert [path[-1] for path in controller.paths] == ["X1", "X1"]


def test_our_own_wait_running_out_is_not_blamed_on_the_exit():
    strategy = pin_strategy(Controller(["X1"], stem.Timeout("no reply")))
    with pytest.raises(TorError) as caught:
        strategy.next_identity("u", avoid=(), timeout=5)
    assert not isinstance(caught.value, CircuitBuildFailed)


def test_allocators_starting_together_read_the_consensus_once():
    controller = Controller([f"X{n}" for n in range(3)], stem.CircuitExtensionFailed(TIMEOUT))
    controller.read_takes = 0.2
    strategy = pin_strategy(controller)
    start = threading.Barrier(3)

    def allocator(n: int) -> None:
        start.wait(timeout=5)
        with pytest.raises(CircuitBuildFailed):
            strategy.next_identity(f"u{n}", avoid=(), timeout=5)

    threads = [threading.Thread(target=allocator, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert controller.consensus_reads == 1
    assert len(controller.paths) == 3  # each still built its circuit


def test_failed_builds_in_a_row_pause_longer_each_time_within_a_bound():
    failures = FailureCount()
    assert failures.pause() == 0.0
    pauses = []
    while not failures.build_failed("EXIT"):
        pauses.append(failures.pause())
    assert pauses == sorted(pauses) and pauses[0] == BUILD_PAUSE and max(pauses) == BUILD_MAX_PAUSE
    # What a busy tor gets before it is called unusable: long enough for tor to raise its
    # learned build timeout, short enough that a tor that cannot build fails closed soon.
    assert 10 <= sum(pauses) <= 30
    failures.built()
    assert failures.pause() == 0.0
