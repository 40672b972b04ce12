"""The package's exception hierarchy: one base class, so callers can catch everything we raise."""

from __future__ import annotations

from datetime import datetime


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


class ExitsExhausted(TorError):
    """No exit is free right now: every candidate is cooling down, quarantined or taken."""

    def __init__(self, message: str, earliest_free_at: datetime | None = None) -> None:
        super().__init__(message)
        #: When the first of them frees up (UTC), if known.
        self.earliest_free_at = earliest_free_at


class LedgerError(StudyBuddyError):
    """The exit ledger is corrupt, locked for too long, or not writable. Never reset silently."""


class InvalidVideoInput(StudyBuddyError, ValueError):
    """A line or argument that is neither a YouTube video URL nor an 11-character video id."""
