"""Outcomes, statuses and capabilities are typed values that store as the strings they always were;
every exception a caller may catch lives in one module and is exported."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace
from typing import Any

import pytest

import yt_study_buddy
from yt_study_buddy import _exceptions
from yt_study_buddy.app import ErrorKind, VideoResult, VideoStatus
from yt_study_buddy.tor import (
    STRATEGIES,
    ExitWaitTimeout,
    NewnymStrategy,
    RotationStrategy,
    SessionOutcome,
    TorEndpoint,
    TorIPQueue,
    TorSession,
)
from yt_study_buddy.youtube import FailureKind


def test_a_video_result_stores_the_strings_old_logs_hold() -> None:
    result = VideoResult(
        "dQw4w9WgXcQ", VideoStatus.FAILED, error_kind=ErrorKind.BLOCKED
    )  # as a reader of an old log may build it
    assert result.status is VideoStatus.FAILED and result.error_kind is ErrorKind.BLOCKED
    line = json.dumps(result.to_json())
    assert '"status": "failed"' in line and '"error_kind": "blocked"' in line
    with pytest.raises(ValueError, match="unknown video status 'fetch'"):
        VideoResult("dQw4w9WgXcQ", "fetch")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(FailureKind))
def test_every_failure_kind_is_an_error_kind_and_a_session_outcome(kind: FailureKind) -> None:
    assert ErrorKind(kind) == kind.value
    assert SessionOutcome(kind) == kind.value


def test_a_session_outcome_is_stored_with_its_reason() -> None:
    session = TorSession(TorEndpoint(), username="u")
    assert session.outcome_text == "ok" and session.label is None
    session.end_as(SessionOutcome.BLOCKED, "ip_blocked")
    assert (session.outcome, session.outcome_text) == (SessionOutcome.BLOCKED, "blocked:ip_blocked")
    session.end_as(SessionOutcome.CANCELLED)
    assert session.outcome_text == "cancelled"
    session.close()


class _OneAtATime(RotationStrategy):
    """Named like no built-in strategy: the queue must ask what it can do, not who it is."""

    name = "one-at-a-time"
    parallel_identities = False

    def next_identity(self, username: str, **_: Any) -> Any:
        raise NotImplementedError


def _client(strategy: RotationStrategy) -> Any:
    return SimpleNamespace(strategy=strategy)


def test_the_queue_asks_the_strategy_whether_it_may_make_identities_at_once() -> None:
    assert len(TorIPQueue(_client(_OneAtATime()), 5)._threads) == 1
    assert len(TorIPQueue(_client(NewnymStrategy()), 5)._threads) == 1
    assert len(TorIPQueue(_client(STRATEGIES["isolate"]()), 5)._threads) > 1


def test_a_queue_timeout_is_ours_and_a_timeout_error() -> None:
    queue = TorIPQueue(_client(STRATEGIES["isolate"]()), 1)  # never started: nothing gets ready
    with pytest.raises(ExitWaitTimeout) as caught:
        queue.get_next_connection(timeout=0.05)
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, yt_study_buddy.StudyBuddyError)


def _exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(_exceptions, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == _exceptions.__name__
    ]


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda cls: cls.__name__)
def test_every_exception_is_in_the_tree_and_exported(cls: type[BaseException]) -> None:
    assert issubclass(cls, yt_study_buddy.StudyBuddyError)
    assert cls.__name__ in (_exceptions.__doc__ or "")
    assert cls.__name__ in yt_study_buddy.__all__ and getattr(yt_study_buddy, cls.__name__) is cls


def test_no_exception_class_is_defined_outside_the_exceptions_module() -> None:
    import importlib
    import pkgutil

    import click

    # Control flow that never reaches a caller (see the exceptions module's docstring).
    private = {"_CourseExpansionFailed", "ExtractionStopped", "_RetryAt", "_JobFailed"}
    stray = []
    for info in pkgutil.walk_packages(yt_study_buddy.__path__, "yt_study_buddy."):
        if ".testing" in info.name or info.name.endswith("__main__") or info.name == _exceptions.__name__:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            # The CLI's click exceptions are how it reports, not errors a library caller meets.
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not issubclass(obj, click.ClickException)
                and name not in private
            ):
                stray.append(f"{info.name}.{name}")
    assert stray == []


def test_the_tor_layer_names_no_command_line_option() -> None:
    import re
    from pathlib import Path

    from yt_study_buddy import tor

    found = [
        f"{path.name}: {match.group()}"
        for path in Path(tor.__file__).parent.glob("*.py")
        for match in re.finditer(r"--(?:tor-|no-launch)[\w-]*|YTSB_\w+", path.read_text())
    ]
    assert found == []


def test_the_cli_spells_the_settings_the_tor_layer_names() -> None:
    from yt_study_buddy.app._hints import with_cli_hints
    from yt_study_buddy.tor._endpoint import CONTROL_PASSWORD_SETTING, CONTROL_PORT_SETTING, SOCKS_PORT_SETTING

    assert with_cli_hints(f"needs a password: pass {CONTROL_PASSWORD_SETTING}") == (
        "needs a password: pass --tor-password (or set YTSB_TOR_PASSWORD)"
    )
    assert with_cli_hints(f"(drop {CONTROL_PASSWORD_SETTING}, or fix it)") == (
        "(drop --tor-password / YTSB_TOR_PASSWORD, or fix it)"
    )
    assert with_cli_hints(f"point {CONTROL_PORT_SETTING} at it; point {SOCKS_PORT_SETTING} at it") == (
        "point --tor-control at it; point --tor-socks at it"
    )
    assert with_cli_hints(f"tor refused {CONTROL_PASSWORD_SETTING}") == "tor refused the control password"
