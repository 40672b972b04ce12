"""Shared fixtures. Lab fixtures start real tor processes: they run only inside a loopback-only
network namespace (the test command enters one), and one lab serves the whole test session."""

from __future__ import annotations

import pytest

#: The control password of the session lab (cookie authentication works too).
LAB_PASSWORD = "lab-control-password"


@pytest.fixture(scope="session")
def lab():
    """A running private Tor network (TorLab, 12 exits, cookie and password auth) for the session."""
    from yt_study_buddy.testing.network import TorLab

    with TorLab(exits=12, control_password=LAB_PASSWORD) as running:
        yield running


@pytest.fixture(scope="session")
def fake_youtube_server():
    """The fake YouTube on 127.0.0.1:443 (TLS, test CA), reachable through the lab's exits."""
    from yt_study_buddy.testing.fake_youtube import FakeYouTube

    with FakeYouTube() as server:
        yield server


@pytest.fixture
def fake_youtube(fake_youtube_server):
    """The session's fake YouTube with its scripts and request log cleared for each test."""
    fake_youtube_server.reset()
    yield fake_youtube_server
