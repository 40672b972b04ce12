"""``TorTranscriptFetcher()`` without a session (legacy mode) on the lab: it takes sessions from a
``RotatingTorClient`` of its own and retries a block on a fresh exit, the blocked exit
quarantined; it never retries a permanent error, and gives up after ``max_attempts``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from yt_study_buddy import FailureKind, FetchFailure, TorTranscriptFetcher
from yt_study_buddy.testing.fake_youtube import Behavior, FakeYouTube
from yt_study_buddy.testing.network import TorLab
from yt_study_buddy.tor._ledger import ExitLedger
from yt_study_buddy.youtube import Snippet

pytestmark = pytest.mark.lab


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def fetcher(lab: TorLab, fake_youtube: FakeYouTube, ledger_path: Path) -> Iterator[TorTranscriptFetcher]:
    made = TorTranscriptFetcher(endpoint=lab.endpoint, ledger_path=ledger_path, ca_bundle=str(fake_youtube.ca_path))
    try:
        yield made
    finally:
        made.close()


def quarantined(ledger_path: Path, exit_ip: str) -> bool:
    with ExitLedger(ledger_path, cooldown=timedelta(hours=1)) as ledger:
        state = ledger.state(exit_ip)
    return state is not None and state.quarantined_until is not None and (state.quarantined_until > datetime.now(UTC))


def watch_pages(fake: FakeYouTube, video_id: str) -> list[tuple[str, str]]:
    """(exit, outcome) of each watch page the fake served for this video, in order."""
    return [(entry.client_ip, entry.outcome) for entry in fake.served(video_id=video_id) if entry.path == "/watch"]


def test_a_blocked_exit_is_quarantined_and_the_video_fetched_on_a_fresh_one(
    fetcher: TorTranscriptFetcher, fake_youtube: FakeYouTube, lab: TorLab, ledger_path: Path
) -> None:
    video_id = "legacyblk01"
    fake_youtube.script(Behavior.RECAPTCHA, video_id=video_id, times=1)  # whichever exit asks first

    transcript = fetcher.fetch_transcript(video_id)

    assert [Snippet(s.text, s.start, s.duration) for s in transcript.snippets] == (
        fake_youtube.video(video_id).snippets("en")
    )
    assert fetcher.attempts == 2
    blocked, fresh = fetcher.exits_tried
    assert blocked != fresh and {blocked, fresh} <= set(lab.exit_ips) and fetcher.exit_ip == fresh
    assert watch_pages(fake_youtube, video_id) == [(blocked, "recaptcha"), (fresh, "ok")]
    assert quarantined(ledger_path, blocked) and not quarantined(ledger_path, fresh)


def test_every_exit_blocked_gives_up_after_max_attempts_on_distinct_exits(
    fetcher: TorTranscriptFetcher, fake_youtube: FakeYouTube, lab: TorLab, ledger_path: Path
) -> None:
    for ip in lab.exit_ips:
        fake_youtube.block_exit(ip)
    video_id = "legacyblk02"

    with pytest.raises(FetchFailure) as raised:
        fetcher.fetch_transcript(video_id)

    assert raised.value.kind is FailureKind.BLOCKED and raised.value.reason == "recaptcha"
    assert fetcher.attempts == fetcher.max_attempts == 3
    assert len(set(fetcher.exits_tried)) == 3
    assert watch_pages(fake_youtube, video_id) == [(ip, "recaptcha") for ip in fetcher.exits_tried]
    assert all(quarantined(ledger_path, ip) for ip in fetcher.exits_tried)


def test_a_permanent_error_is_not_retried(
    fetcher: TorTranscriptFetcher, fake_youtube: FakeYouTube, ledger_path: Path
) -> None:
    video_id = "legacyperm1"
    fake_youtube.script(Behavior.TRANSCRIPTS_DISABLED, video_id=video_id)

    with pytest.raises(FetchFailure) as raised:
        fetcher.fetch_transcript(video_id)

    assert raised.value.kind is FailureKind.PERMANENT and raised.value.reason == "transcripts_disabled"
    assert fetcher.attempts == 1 and len(fetcher.exits_tried) == 1
    assert len(watch_pages(fake_youtube, video_id)) == 1
    assert not quarantined(ledger_path, fetcher.exits_tried[0])
