"""Every exception this package raises on purpose, in one place, under one base class.

The tree::

    StudyBuddyError
    ├── TorError                 tor cannot be used as asked (the package fails closed)
    │   ├── TorUnavailable       nothing usable answers at the SOCKS or control port
    │   ├── TorAuthError         the control port refused us
    │   ├── ExitRefused          a new circuit's exit is in use, cooling down or quarantined
    │   ├── CircuitBuildFailed   a circuit through a chosen exit was not built (timed out, refused)
    │   ├── ExitsExhausted       no exit is free right now
    │   └── ExitCheckError       the echo service answered, but not with a trustworthy address
    ├── ExitWaitTimeout          (also a TimeoutError) no checked exit became ready in time
    ├── QueueStopped             the exit queue was stopped, or handed out all it had
    ├── LedgerError              the exit ledger is corrupt, locked too long, or not writable
    │   ├── LedgerUnavailable    its database server cannot be reached, or went away
    │   ├── LedgerAuthError      its database server refused our credentials or privileges
    │   └── LedgerSchemaError    the database holds something other than a ledger of this version
    ├── TorChangesError          the record of what we changed in tor cannot be read or written
    ├── FetchFailure             a classified failed transcript fetch (see ``FailureKind``)
    ├── InvalidVideoInput        (also a ValueError) neither a video URL nor a video id
    ├── RunLogError              the run log cannot be written
    ├── QueueError               the job queue's database (distributed runs) cannot be used
    └── SearchError              the notes' search index cannot be used (no FTS5, damaged)
        └── SearchQueryError     (also a ValueError) the query is not valid FTS5 syntax

Four exceptions stay private to their module, as control flow that never reaches a caller:
the course expansion's ``_CourseExpansionFailed`` (app), yt-dlp's ``ExtractionStopped``
(a yt-dlp ``RequestError``, raised inside yt-dlp's own request handler), and a distributed
job's ``_RetryAt`` and ``_JobFailed`` (app), which procrastinate's retry strategy turns into
"queue again at" and "failed".
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class StudyBuddyError(Exception):
    """Base class of every error this package raises on purpose."""


class TorError(StudyBuddyError):
    """Tor cannot be used as asked. The package fails closed: it never goes direct instead."""


class TorUnavailable(TorError):
    """Nothing usable answers at the SOCKS or control port."""


class TorAuthError(TorError):
    """The control port refused us: wrong or missing password, or an unreadable cookie file."""


class ExitRefused(TorError):
    """A new circuit's exit is in use, cooling down or quarantined: refused before any byte."""


class CircuitBuildFailed(TorError):
    """A circuit through a chosen exit was not built: tor's build timeout (which closes about
    the slowest fifth of builds on a real network) or a relay on its path refused. Says more
    about that path than about tor, so the client tries another exit before blaming tor."""

    def __init__(self, message: str, exit_fingerprint: str) -> None:
        super().__init__(message)
        self.exit_fingerprint = exit_fingerprint


class ExitsExhausted(TorError):
    """No exit is free right now: every candidate is cooling down, quarantined or taken."""

    def __init__(
        self, message: str, earliest_free_at: datetime | None = None, *, retry_at: datetime | None = None
    ) -> None:
        super().__init__(message)
        #: When the first of them frees up (UTC), if known.
        self.earliest_free_at = earliest_free_at
        #: When asking again is worth it: up to a second before ``earliest_free_at``, since a
        #: session can be prepared on an exit while its cooldown ends.
        self.retry_at = retry_at or earliest_free_at


class ExitCheckError(TorError):
    """The echo service answered, but not with an address we can trust."""


class ExitWaitTimeout(StudyBuddyError, TimeoutError):
    """No checked exit was ready within the time the caller gave the queue."""


class QueueStopped(StudyBuddyError):
    """The queue was stopped (or has handed out all it was asked for)."""


class LedgerError(StudyBuddyError):
    """The exit ledger is corrupt, locked for too long, or not writable. Never reset silently."""


class LedgerUnavailable(LedgerError):
    """The ledger's database server cannot be reached (or the connection to it was lost)."""


class LedgerAuthError(LedgerError):
    """The ledger's database server refused our credentials, or the privileges the ledger needs."""


class LedgerSchemaError(LedgerError):
    """The ledger's file or schema holds something else, or a ledger of an unknown version."""


class TorChangesError(StudyBuddyError):
    """The record of what we changed in tor cannot be read or written."""


class FailureKind(StrEnum):
    """What the caller should do about a failed attempt."""

    #: YouTube blocks this exit: retry the video on a fresh exit and quarantine this one.
    BLOCKED = "blocked"
    #: Transport trouble or a flaky answer: retry on a fresh exit, do not quarantine.
    RETRYABLE = "retryable"
    #: About the video itself: retrying cannot help.
    PERMANENT = "permanent"


class FetchFailure(StudyBuddyError):
    """A classified failed fetch; the original exception is the ``__cause__``."""

    def __init__(self, kind: FailureKind, reason: str, video_id: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        #: Short stable slug for logs, JSON and summaries, e.g. ``"ip_blocked"``.
        self.reason = reason
        self.video_id = video_id


class InvalidVideoInput(StudyBuddyError, ValueError):
    """A line or argument that is neither a YouTube video URL nor an 11-character video id."""


class RunLogError(StudyBuddyError):
    """The run log cannot be written (a full disk, a read-only directory)."""


class QueueError(StudyBuddyError):
    """The job queue's PostgreSQL database cannot be used: unreachable, refused, or no queue in it."""


class SearchError(StudyBuddyError):
    """The notes' search index cannot be used: SQLite lacks FTS5, or the file is damaged or locked."""


class SearchQueryError(SearchError, ValueError):
    """A search query that is not valid FTS5 syntax (an unbalanced quote, a lone operator)."""
