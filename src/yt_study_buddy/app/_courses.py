"""Expand the courses among a batch's inputs on fresh checked exits, like any other fetch.

Each attempt takes a new session from the client (its own checked, unique exit). A block marks
the session blocked, so closing it quarantines the exit, and the expansion starts again on a
fresh one; transport trouble just moves it; a missing playlist or unknown channel is final and
costs only that course. The videos come out in input order, courses expanded in place, each
video once however many courses name it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ExitsExhausted, FailureKind, FetchFailure
from ..tor._client import RotatingTorClient
from ..youtube._courses import Course, CourseEntry, CourseKind, CourseRef, expand_course
from ._course_notes import course_folder
from ._fetcher import end_on_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CourseFailure:
    """A course that could not be expanded, and the one line that says why."""

    ref: CourseRef
    reason: str
    message: str
    attempts: int
    exits: tuple[str, ...] = ()


@dataclass
class ExpandedInputs:
    """The batch's videos, in order and unique, plus the courses and the failed ones."""

    video_ids: list[str] = field(default_factory=list)
    #: The videos given on their own (not through a course): their notes go to the output root.
    singles: list[str] = field(default_factory=list)
    courses: list[Course] = field(default_factory=list)
    failures: list[CourseFailure] = field(default_factory=list)


def expand_inputs(
    client: RotatingTorClient,
    items: Sequence[str | CourseRef],
    *,
    playlist_items: str | None = None,
    max_attempts: int = 3,
) -> ExpandedInputs:
    """Videos stay as they are; each course is expanded in place (see `expand_on_fresh_exits`)."""
    result = ExpandedInputs()
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            ids = [item]
            result.singles.append(item)
        else:
            try:
                course = expand_on_fresh_exits(client, item, playlist_items=playlist_items, max_attempts=max_attempts)
            except _CourseExpansionFailed as failed:
                result.failures.append(failed.failure)
                continue
            result.courses.append(course)
            ids = course.video_ids
        for video_id in ids:
            if video_id not in seen:
                seen.add(video_id)
                result.video_ids.append(video_id)
    return result


class _CourseExpansionFailed(Exception):
    def __init__(self, failure: CourseFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def expand_on_fresh_exits(
    client: RotatingTorClient, ref: CourseRef, *, playlist_items: str | None = None, max_attempts: int = 3
) -> Course:
    """The course, expanded on a fresh exit per attempt; `_CourseExpansionFailed` when it is
    missing, when no exit is left, or after ``max_attempts`` blocks or transport failures.
    ``TorError`` (tor itself unusable) propagates."""
    exits: list[str] = []
    failure: FetchFailure | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            session = client.new_session()
        except ExitsExhausted as exc:
            raise _CourseExpansionFailed(
                CourseFailure(ref, "no_fresh_exit", str(exc), attempt - 1, tuple(exits))
            ) from None
        session.label = str(ref)  # what the exit ledger records this use as
        exits.append(session.exit_ip or "?")
        try:
            course = expand_course(session, ref, playlist_items=playlist_items)
        except FetchFailure as caught:
            failure = caught
            end_on_failure(session, caught)
            if caught.kind is FailureKind.PERMANENT:
                raise _CourseExpansionFailed(
                    CourseFailure(ref, caught.reason, str(caught), attempt, tuple(exits))
                ) from caught
            log.info(
                "%s: %s on exit %s (attempt %d)%s",
                ref,
                caught.reason,
                session.exit_ip,
                attempt,
                "; trying a fresh exit" if attempt < max_attempts else "",
            )
            continue
        finally:
            session.close()
        log.info(
            '%s "%s"%s: %d videos (via %s)',
            ref,
            course.title,
            f" by {course.channel}" if course.channel and course.channel != course.title else "",
            len(course.entries),
            session.exit_ip,
        )
        return course
    assert failure is not None
    raise _CourseExpansionFailed(
        CourseFailure(ref, failure.reason, f"{failure} (after {max_attempts} attempts)", max_attempts, tuple(exits))
    )


def course_json(course: Course) -> dict[str, Any]:
    """A course as the ``--json`` summary lists it."""
    return {
        "kind": course.kind.value,
        "id": course.id,
        "title": course.title,
        "channel": course.channel,
        "handle": course.handle,
        "url": course.url,
        "folder": course_folder(course),
        "entries": [
            {"position": e.position, "video_id": e.video_id, "title": e.title, "duration": e.duration}
            for e in course.entries
        ],
    }


def course_from_json(data: dict[str, Any]) -> Course:
    """The course `course_json` gave (a distributed run keeps its courses so in the database)."""
    return Course(
        kind=CourseKind(data["kind"]),
        id=data["id"],
        title=data["title"],
        channel=data["channel"],
        handle=data["handle"],
        url=data["url"],
        entries=tuple(CourseEntry(e["video_id"], e["title"], e["duration"], e["position"]) for e in data["entries"]),
    )


def failure_json(failure: CourseFailure) -> dict[str, Any]:
    return {
        "kind": failure.ref.kind.value,
        "id": failure.ref.id,
        "reason": failure.reason,
        "error": failure.message,
        "attempts": failure.attempts,
        "exits": list(failure.exits),
    }
