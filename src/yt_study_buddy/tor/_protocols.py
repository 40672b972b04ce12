"""What the exit queue and the batch runner use of a client: sessions on fresh exits.

``RotatingTorClient`` is the one implementation; the protocol lets the queue's and the runner's
logic (stop, retry, re-check, exhaustion) be tested without tor, with a client that hands out
sessions of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._rotation import RotationStrategy
    from ._session import TorSession


class SessionSource(Protocol):
    """Hands out sessions, each on a fresh, unique, checked exit, and re-checks them before use."""

    @property
    def strategy(self) -> RotationStrategy:
        """How fresh circuits are made; the queue asks it what it allows (e.g. how many allocators)."""

    def new_session(self) -> TorSession:
        """A session on a fresh exit; ``ExitsExhausted`` when none is free, ``TorError`` when tor fails."""

    def is_stale(self, session: TorSession, max_age: float) -> bool:
        """Whether the session's circuit may have moved since it was checked."""

    def revalidate(self, session: TorSession) -> bool:
        """Check the session's exit again; False (and the session ended) when it is gone."""
