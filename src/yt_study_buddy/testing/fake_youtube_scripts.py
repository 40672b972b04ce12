"""Scripted behaviours of the fake YouTube: what to serve wrong, where, for whom, how often."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from . import fake_youtube_pages as pages


class Step(enum.Enum):
    """The requests a behaviour can act on."""

    WATCH = "watch"
    PLAYER = "player"
    TIMEDTEXT = "timedtext"
    OEMBED = "oembed"


class Behavior(enum.Enum):
    """A scripted answer. Each acts at fixed steps (``steps``); at the other steps of the same
    fetch the video is served normally, so e.g. BOT_CHECK still gets a normal watch page."""

    OK = "ok"
    CONSENT = "consent"
    RECAPTCHA = "recaptcha"
    RATE_LIMITED_WATCH = "429-watch"
    RATE_LIMITED_PLAYER = "429-player"
    RATE_LIMITED_TIMEDTEXT = "429-timedtext"
    BOT_CHECK = "bot-check"
    AGE_RESTRICTED = "age-restricted"
    UNAVAILABLE = "unavailable"
    UNPLAYABLE = "unplayable"
    TRANSCRIPTS_DISABLED = "transcripts-disabled"
    LANGUAGE_MISSING = "language-missing"
    PO_TOKEN = "po-token"
    EMPTY_TIMEDTEXT = "empty-timedtext"
    SERVER_ERROR = "500"
    SLOW = "slow"
    STALL = "stall"

    @property
    def steps(self) -> frozenset[Step]:
        """Where this behaviour changes the answer (and uses up one of a script's ``times``)."""
        return _ACTS_AT[self]

    @property
    def outcome(self) -> str:
        """The log's name for what was served."""
        return "429" if self.value.startswith("429") else self.value


_ACTS_AT: dict[Behavior, frozenset[Step]] = {
    Behavior.OK: frozenset({Step.WATCH}),
    Behavior.CONSENT: frozenset({Step.WATCH}),
    Behavior.RECAPTCHA: frozenset({Step.WATCH}),
    Behavior.RATE_LIMITED_WATCH: frozenset({Step.WATCH}),
    Behavior.SERVER_ERROR: frozenset({Step.WATCH}),
    Behavior.STALL: frozenset({Step.WATCH, Step.OEMBED}),
    Behavior.UNAVAILABLE: frozenset({Step.PLAYER, Step.OEMBED}),
    **{
        behavior: frozenset({Step.PLAYER})
        for behavior in (
            Behavior.RATE_LIMITED_PLAYER,
            Behavior.BOT_CHECK,
            Behavior.AGE_RESTRICTED,
            Behavior.UNPLAYABLE,
            Behavior.TRANSCRIPTS_DISABLED,
            Behavior.LANGUAGE_MISSING,
            Behavior.PO_TOKEN,
        )
    },
    Behavior.RATE_LIMITED_TIMEDTEXT: frozenset({Step.TIMEDTEXT}),
    Behavior.EMPTY_TIMEDTEXT: frozenset({Step.TIMEDTEXT}),
    Behavior.SLOW: frozenset(Step),
}


@dataclass
class Script:
    """One scripted behaviour. ``None`` filters match anything; ``times`` (remaining uses,
    ``None`` = until reset) drops by one whenever the behaviour acts (see ``Behavior.steps``).
    ``body``: bytes (a recorded answer) served instead of the synthetic page where it acts."""

    behavior: Behavior
    video_id: str | None = None
    client_ip: str | None = None
    times: int | None = None
    delay: float = 1.0
    reason: str = pages.UNPLAYABLE_REASON
    subreasons: tuple[str, ...] = pages.UNPLAYABLE_SUBREASONS
    body: bytes | None = None

    def matches(self, video_id: str | None, client_ip: str) -> bool:
        """Whether this script is about that video from that exit."""
        return (self.video_id is None or self.video_id == video_id) and (
            self.client_ip is None or self.client_ip == client_ip
        )
