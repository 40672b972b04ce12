"""TorSession fails closed: nothing leaves outside a socks5h proxy, the environment cannot
redirect it, and every request gets a timeout. No network is touched here."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from yt_study_buddy import TorEndpoint, TorError, TorSession
from yt_study_buddy.tor._session import _VERIFIED_POOLS, DEFAULT_TIMEOUT
from yt_study_buddy.tor._endpoint import parse_host_port


@pytest.fixture
def sent(monkeypatch) -> list[dict[str, Any]]:
    """Capture what would reach the transport instead of opening a connection."""
    calls: list[dict[str, Any]] = []

    def fake_send(self, request, **kwargs):
        calls.append({"url": request.url, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.request = request
        return response

    monkeypatch.setattr(HTTPAdapter, "send", fake_send)
    return calls


def test_requests_go_through_socks5h_with_the_session_username_and_a_timeout(sent):
    session = TorSession(TorEndpoint(socks_port=9999), username="ytsb-test-1")
    session.get("https://www.youtube.com/watch?v=abcdefghijk")
    (call,) = sent
    assert call["proxies"]["https"].startswith("socks5h://ytsb-test-1:")
    assert call["proxies"]["https"].endswith("@127.0.0.1:9999")
    assert call["timeout"] == DEFAULT_TIMEOUT


def test_an_explicit_timeout_is_kept(sent):
    TorSession(TorEndpoint(), username="u").get("https://example.org/", timeout=3)
    assert sent[0]["timeout"] == 3


@pytest.mark.parametrize("override", [{"https": None}, {"https": "socks5://127.0.0.1:9050"},
                                      {"https": "http://proxy.invalid:3128"}])
def test_a_request_that_would_bypass_tor_is_refused(sent, override):
    session = TorSession(TorEndpoint(), username="u")
    with pytest.raises(TorError, match="would not go through Tor"):
        session.get("https://www.youtube.com/", proxies=override)
    assert sent == []


def test_proxy_environment_variables_are_ignored(sent, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "*")
    TorSession(TorEndpoint(), username="u").get("https://www.youtube.com/")
    assert sent[0]["proxies"]["https"].startswith("socks5h://u:")


def test_the_control_password_never_shows_in_repr():
    assert "secret" not in repr(TorEndpoint(control_password="secret"))


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9150", ("127.0.0.1", 9150)),
    ("tor.local", ("tor.local", 9050)),
    (":9150", ("127.0.0.1", 9150)),
    ("[::1]:9150", ("::1", 9150)),
    ("[::1]", ("::1", 9050)),
])
def test_host_port_parsing(text, expected):
    assert parse_host_port(text, 9050) == expected


@pytest.mark.parametrize("text", ["", "host:0", "host:70000", "host:abc", "[::1"])
def test_bad_host_port_is_refused(text):
    with pytest.raises(ValueError):
        parse_host_port(text, 9050)


class _FakeSocket:
    def __init__(self, port: int) -> None:
        self.port, self.closed = port, False

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        self.closed = True


def _connection(verifier, monkeypatch, ports):
    """A SOCKS connection as a TorSession's adapter makes it; the SOCKS connect itself is faked."""
    from urllib3.contrib.socks import SOCKSConnection

    from yt_study_buddy.tor._session import TorOnlyAdapter

    sockets = iter(_FakeSocket(port) for port in ports)
    monkeypatch.setattr(SOCKSConnection, "_new_conn", lambda self: next(sockets))
    manager = TorOnlyAdapter((1.0, 1.0), verifier).proxy_manager_for("socks5h://u:p@127.0.0.1:9050")
    return manager.connection_from_url("https://www.youtube.com/")._new_conn()


def test_new_connections_carry_nothing_until_their_exit_is_confirmed(monkeypatch):
    asked: list[int] = []
    answers = iter([False, True])  # tor put the first one on another exit
    connection = _connection(lambda port: asked.append(port) or next(answers), monkeypatch, [40001, 40002])
    accepted = connection._new_conn()
    assert asked == [40001, 40002] and accepted.port == 40002


def test_a_connection_tor_keeps_moving_is_refused(monkeypatch):
    from urllib3.exceptions import NewConnectionError

    connection = _connection(lambda port: False, monkeypatch, range(41000, 41010))
    with pytest.raises(NewConnectionError, match="another exit than the checked one"):
        connection._new_conn()



def test_a_refused_exit_closes_the_connection_before_the_error_propagates(monkeypatch):
    from urllib3.contrib.socks import SOCKSConnection

    from yt_study_buddy._exceptions import ExitRefused

    def refuse(port: int) -> bool:
        raise ExitRefused("tor chose a taken exit")

    connection = _connection(refuse, monkeypatch, [])
    opened = _FakeSocket(42000)
    monkeypatch.setattr(SOCKSConnection, "_new_conn", lambda self: opened)
    with pytest.raises(ExitRefused):
        connection._new_conn()
    assert opened.closed


def test_socks_pools_stay_ours_after_yt_dlp_replaced_requests_socks_manager():
    # Importing yt-dlp swaps requests.adapters.SOCKSProxyManager for its own class, whose
    # options our verified connections cannot read: the adapter must not pick it up.
    import urllib3.contrib.socks
    import yt_dlp  # noqa: F401
    import requests.adapters

    assert requests.adapters.SOCKSProxyManager is not urllib3.contrib.socks.SOCKSProxyManager
    session = TorSession(TorEndpoint(socks_port=9999), username="ytsb-test-ytdlp")
    manager = session.get_adapter("https://www.youtube.com/").proxy_manager_for(session.proxies["https"])
    assert type(manager) is urllib3.contrib.socks.SOCKSProxyManager
    options = manager.connection_pool_kw["_socks_options"]
    assert (options["proxy_host"], options["proxy_port"], options["rdns"]) == ("127.0.0.1", 9999, True)
    assert options["username"] == "ytsb-test-ytdlp" and callable(options["stream_verifier"])
    assert set(manager.pool_classes_by_scheme.values()) == set(_VERIFIED_POOLS.values())
