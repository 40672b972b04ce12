"""Scripted behaviours of the fake YouTube: what to serve wrong, where, for whom, how often;
and its per-exit rate limit, which blocks an exit that asks for too many videos too fast."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import _pages as pages


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
    #: 302 to www.google.com/sorry/index, which answers 429 with the captcha page.
    RECAPTCHA_REDIRECT = "recaptcha-redirect"
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
    Behavior.RECAPTCHA_REDIRECT: frozenset({Step.WATCH}),
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


@dataclass(frozen=True)
class RateLimit:
    """An exit (client IP) that asks for more than ``videos`` distinct videos (watch pages)
    within ``window`` seconds is blocked for ``block`` seconds: its requests then get
    ``behavior``, by default the redirect to google.com/sorry real YouTube sends (§1.2)."""

    videos: int
    window: float
    block: float
    behavior: Behavior = Behavior.RECAPTCHA_REDIRECT

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise ValueError("a rate limit allows at least one video")
        if self.window <= 0 or self.block <= 0:
            raise ValueError("window and block must be positive")
        if self.behavior is Behavior.OK:
            raise ValueError("a rate limit must block with a failure behaviour")


class RateLimiter:
    """The state of a ``RateLimit``: recent asks and blocks per exit. Not thread-safe (the
    fake calls it under its lock); ``clock`` is injectable so tests need not wait."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._asks: dict[str, deque[tuple[float, str]]] = {}
        self._blocked_until: dict[str, float] = {}

    def claim(self, step: Step, video_id: str | None, client_ip: str) -> Script | None:
        """Count a watch request as an ask; the blocking script if this exit is blocked and
        the block acts at ``step``, else None. The ask that exceeds the limit is blocked."""
        now = self._clock()
        until = self._blocked_until.get(client_ip)
        if until is not None and now >= until:
            del self._blocked_until[client_ip]
            until = None
        if until is None and step is Step.WATCH and video_id:
            until = self._ask(client_ip, video_id, now)
        if until is None or step not in self.limit.behavior.steps:
            return None
        return Script(self.limit.behavior, video_id, client_ip)

    def blocked_until(self, client_ip: str) -> float | None:
        """When this exit's block ends (on ``clock``), or None if it is not blocked."""
        until = self._blocked_until.get(client_ip)
        return until if until is not None and self._clock() < until else None

    def _ask(self, client_ip: str, video_id: str, now: float) -> float | None:
        asks = self._asks.setdefault(client_ip, deque())
        while asks and asks[0][0] <= now - self.limit.window:
            asks.popleft()
        recent = {asked for _, asked in asks}
        if video_id not in recent and len(recent) >= self.limit.videos:
            asks.clear()  # served again after the block, with a fresh window
            self._blocked_until[client_ip] = now + self.limit.block
            return now + self.limit.block
        asks.append((now, video_id))
        return None
