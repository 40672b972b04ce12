"""The scenarios of issue 5: the doc's 9 videos / 3 workers, exits reused under a short
cooldown, and 1,000 queued videos against 10 for memory; issue 11's rate-limited fake YouTube
(what the cooldown buys against a naive client); plus a tiny one for CI."""

from __future__ import annotations

from dataclasses import dataclass

from yt_study_buddy.testing.fake_youtube import RateLimit

ALL_DESIGNS = ("before", "after", "default", "isolate", "pin")


@dataclass(frozen=True)
class Scenario:
    """One private network (``exits``) and fake YouTube (``latency`` s per video) shared by
    every run in it: each design in ``designs`` runs once per video count in ``sizes``.
    ``rate_limit`` makes the fake block exits that ask for too many videos too fast."""

    name: str
    sizes: tuple[int, ...]
    workers: int
    latency: float
    exits: int
    cooldown_s: float
    designs: tuple[str, ...]
    timeout_s: float
    what: str
    rate_limit: RateLimit | None = None
    #: Runs of each design whose medians the table reports (``--repeat`` overrides).
    runs: int = 5

    def repeats(self, override: int | None) -> int:
        return override or self.runs

    @property
    def reuses_exits(self) -> bool:
        """Whether the cooldown is short enough that exits must serve several videos."""
        return max(self.sizes) > self.exits


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("doc", (9,), 3, 3.0, 12, 3600, ALL_DESIGNS, 600, "the design doc's 9 videos / 3 workers, F = 3 s"),
        # NEWNYM designs are left out: tor honours one NEWNYM per 10 s, so they cannot pass
        # 0.1 videos/s whatever the exits (60 videos: >= 590 s each); "doc" measures them.
        Scenario(
            "reuse",
            (60,),
            10,
            1.0,
            12,
            20,
            ("default", "isolate", "pin"),
            400,
            "60 videos / 10 workers on 12 exits, cooldown 20 s: exits are reused",
        ),
        Scenario(
            "memory",
            (10, 1000),
            4,
            0.05,
            24,
            0,
            ("default",),
            900,
            "1,000 queued videos against 10, cooldown 0 so 24 exits serve them all",
            runs=3,  # peak memory varies little; 1,000 videos take minutes a run
        ),
        # The fake blocks an exit for 60 s when it asks for a second video within 20 s: a
        # cooldown of 20 s never trips it; a client that reuses exits at once does.
        Scenario(
            "ratelimit",
            (24,),
            4,
            0.5,
            8,
            20,
            ("default", "isolate", "naive"),
            300,
            "24 videos / 4 workers on 8 exits; the fake blocks an exit's 2nd video within 20 s",
            rate_limit=RateLimit(videos=1, window=20, block=60),
            runs=3,
        ),
        Scenario("smoke", (2,), 2, 0.3, 8, 3600, ALL_DESIGNS, 120, "CI smoke test: tiny, no timing claims", runs=1),
    )
}
