"""The benchmark's own logic that needs no lab: how blocked requests are counted, and what the
naive design's proxy configuration asks of youtube-transcript-api."""

from __future__ import annotations

from benchmarks.designs import NAIVE_RETRIES, _RandomTorCredentials
from benchmarks.report import blocked_requests

from yt_study_buddy import TorEndpoint
from yt_study_buddy.testing.fake_youtube import SORRY_OUTCOME, Behavior, LoggedRequest, RateLimit


def _logged(outcome: str, path: str = "/watch") -> LoggedRequest:
    return LoggedRequest(time=0.0, client_ip="127.0.0.9", method="GET", path=path, video_id="v" * 11, outcome=outcome)


def test_blocked_requests_are_the_limits_answers_and_the_sorry_page() -> None:
    log = [
        _logged("ok"),
        _logged(Behavior.RECAPTCHA_REDIRECT.outcome),
        _logged(SORRY_OUTCOME, "/sorry/index"),
        _logged("429", "/youtubei/v1/player"),  # counted only where the limit answers with 429s
    ]
    assert blocked_requests(log, RateLimit(videos=1, window=20, block=60)) == 2
    assert blocked_requests(log, RateLimit(videos=1, window=20, block=60, behavior=Behavior.RATE_LIMITED_PLAYER)) == 2
    assert blocked_requests(log, None) is None  # no rate limit: the column is n/a


def test_the_naive_client_draws_fresh_credentials_and_retries_on_them() -> None:
    endpoint = TorEndpoint(socks_port=9150)
    first, second = _RandomTorCredentials(endpoint), _RandomTorCredentials(endpoint)
    proxies = first.to_requests_dict()
    assert proxies["https"].startswith("socks5h://") and proxies["https"].endswith("@127.0.0.1:9150")
    assert proxies["https"] != second.to_requests_dict()["https"]
    assert (first.retries_when_blocked, first.prevent_keeping_connections_alive) == (NAIVE_RETRIES, True)
