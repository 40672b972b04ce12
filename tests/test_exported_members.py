"""The public API is complete: every exported name resolves, each package's ``__all__`` is
honest, and what a caller needs to build and drive a run is importable from the root."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

import yt_study_buddy

PACKAGES = [
    "yt_study_buddy",
    "yt_study_buddy.tor",
    "yt_study_buddy.youtube",
    "yt_study_buddy.notes",
    "yt_study_buddy.app",
]
#: The seed design's modules and what they must keep offering where the design names them.
SEED_MODULES = {
    "yt_study_buddy.rotating_tor_client": ["RotatingTorClient"],
    "yt_study_buddy.tor_ip_queue": ["TorIPQueue"],
    "yt_study_buddy.tor_transcript_fetcher": ["TorTranscriptFetcher", "SingleTorCoordinator", "TorExitNodePool"],
}


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_member_resolves_and_is_listed_once(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert len(exported) == len(set(exported))
    missing = [member for member in exported if not hasattr(package, member)]
    assert missing == []


@pytest.mark.parametrize("name", PACKAGES[1:])
def test_a_layer_exports_only_its_own_public_names(name: str) -> None:
    """No private name leaks out, and every public class or function defined there is exported."""
    package = importlib.import_module(name)
    assert [member for member in package.__all__ if member.startswith("_")] == []
    for attribute, value in vars(package).items():
        if inspect.ismodule(value) or attribute.startswith("_"):
            continue
        if (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__.startswith(name):
            assert attribute in package.__all__, f"{name}.{attribute} is public but not exported"


@pytest.mark.parametrize(("module", "names"), sorted(SEED_MODULES.items()))
def test_the_seed_design_names_stay_where_the_design_puts_them(module: str, names: list[str]) -> None:
    seed = importlib.import_module(module)
    for member in names:
        assert getattr(seed, member) is getattr(yt_study_buddy, member)


def _public_annotations(target: object) -> set[type]:
    """The project's own classes named in a callable's signature (parameters and return)."""
    hints = typing.get_type_hints(target)
    found: set[type] = set()
    for hint in hints.values():
        for candidate in (hint, *typing.get_args(hint)):
            if inspect.isclass(candidate) and candidate.__module__.startswith("yt_study_buddy"):
                found.add(candidate)
    return found


@pytest.mark.parametrize(
    "target",
    [
        yt_study_buddy.BatchRunner.__init__,
        yt_study_buddy.BatchRunner.run,
        yt_study_buddy.open_run,
        yt_study_buddy.open_client,
        yt_study_buddy.RotatingTorClient.__init__,
        yt_study_buddy.RotatingTorClient.new_session,
        yt_study_buddy.TorIPQueue.__init__,
        yt_study_buddy.fetch_transcript,
    ],
    ids=lambda target: target.__qualname__,
)
def test_what_the_public_api_takes_and_returns_is_exported(target: object) -> None:
    needed = _public_annotations(target)
    assert needed, "the signature names none of the project's types: the check would pass vacuously"
    assert sorted(cls.__name__ for cls in needed if getattr(yt_study_buddy, cls.__name__, None) is not cls) == []
