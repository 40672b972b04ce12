"""TorSession fails closed: nothing leaves but through its own tor SOCKS endpoint and credentials,
the environment cannot redirect it, and every request gets a timeout. The network is touched
only on loopback, by recording listeners that show what (nothing) reached them."""

from __future__ import annotations

import gc
import ssl
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
from requests.adapters import HTTPAdapter
from youtube_transcript_api import YouTubeTranscriptApi
from youtube_transcript_api.proxies import GenericProxyConfig, WebshareProxyConfig

from yt_study_buddy import TorEndpoint, TorError, TorSession
from yt_study_buddy.testing.recorders import ConnectionRecorder
from yt_study_buddy.tor._endpoint import parse_host_port
from yt_study_buddy.tor._session import _VERIFIED_POOLS, DEFAULT_TIMEOUT, TorOnlyAdapter, tls_context, trust_bundle

CERT_END = "-----END CERTIFICATE-----\n"


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


@pytest.mark.parametrize(
    "override", [{"https": None}, {"https": "socks5://127.0.0.1:9050"}, {"https": "http://proxy.invalid:3128"}]
)
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9150", ("127.0.0.1", 9150)),
        ("tor.local", ("tor.local", 9050)),
        (":9150", ("127.0.0.1", 9150)),
        ("[::1]:9150", ("::1", 9150)),
        ("[::1]", ("::1", 9050)),
    ],
)
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


OWN_PROXY = "socks5h://u:p@127.0.0.1:9050"


def _connection(verifier, monkeypatch, ports):
    """A SOCKS connection as a TorSession's adapter makes it; the SOCKS connect itself is faked."""
    from urllib3.contrib.socks import SOCKSConnection

    from yt_study_buddy.tor._session import TorOnlyAdapter

    sockets = iter(_FakeSocket(port) for port in ports)
    monkeypatch.setattr(SOCKSConnection, "_new_conn", lambda self: next(sockets))
    manager = TorOnlyAdapter((1.0, 1.0), verifier, OWN_PROXY).proxy_manager_for(OWN_PROXY)
    return manager.connection_from_url("https://www.youtube.com/")._new_conn()


def test_new_connections_carry_nothing_until_their_exit_is_confirmed(monkeypatch):
    asked: list[int] = []
    answers = iter([False, True])  # tor put the first one on another exit

    def on_exit(port: int) -> bool:
        asked.append(port)
        return next(answers)

    connection = _connection(on_exit, monkeypatch, [40001, 40002])
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


@pytest.fixture
def listeners():
    """Recording listeners: the session's own SOCKS endpoint, another port on its host, and
    another host. None answers; each records every connection it accepts."""
    with (
        ConnectionRecorder("127.0.0.2") as own,
        ConnectionRecorder("127.0.0.2") as other_port,
        ConnectionRecorder("127.0.0.3") as other_host,
    ):
        yield {"own": own, "other_port": other_port, "other_host": other_host}


def _session_on(own: ConnectionRecorder) -> TorSession:
    host, port = own.address
    return TorSession(TorEndpoint(socks_host=host, socks_port=port), username="ytsb-own", timeout=(5.0, 5.0))


def test_the_own_endpoint_listener_sees_the_sessions_socks_handshake(listeners):
    # The positive control of the refusals below: what the session sends does reach a listener.
    with _session_on(listeners["own"]) as session, pytest.raises(requests.ConnectionError):
        session.get("https://www.youtube.com/")
    (accepted, *_) = listeners["own"].connections
    assert accepted.first_bytes.startswith(b"\x05")  # a SOCKS5 greeting
    assert listeners["other_port"].connections == listeners["other_host"].connections == []


def _foreign(listeners, name: str, scheme: str = "socks5h") -> str:
    if name == "own_other_credentials":
        return listeners["own"].url(scheme).replace("://", "://someone:else@")
    return listeners[name].url(scheme)


# (which listener the override points at, its scheme, how it reaches the session)
FOREIGN = [
    ("other_port", "socks5h", "per-call"),
    ("other_host", "socks5h", "per-call"),
    ("other_host", "socks5h", "per-call host key"),  # "https://host" wins over the session's "https"
    ("other_host", "http", "per-call host key"),
    ("other_port", "socks5h", "session.proxies"),
    ("other_host", "socks5h", "session.proxies"),
    ("own_other_credentials", "socks5h", "session.proxies"),  # same tor, another circuit
    ("other_host", "socks5h", "session.proxies all"),
]


def _get(session: requests.Session, proxy: str, how: str) -> None:
    url = "https://www.youtube.com/watch?v=abcdefghijk"
    if how == "per-call":
        session.get(url, proxies={"https": proxy}, timeout=5)
    elif how == "per-call host key":
        session.get(url, proxies={"https://www.youtube.com": proxy}, timeout=5)
    elif how == "session.proxies":
        session.proxies = {"http": proxy, "https": proxy}
        session.get(url, timeout=5)
    else:
        session.proxies = {"all": proxy}
        session.get(url, timeout=5)


@pytest.mark.parametrize(("target", "scheme", "how"), FOREIGN)
def test_a_foreign_proxy_is_refused_before_any_connection(listeners, target, scheme, how):
    proxy = _foreign(listeners, target, scheme)
    with _session_on(listeners["own"]) as session, pytest.raises(TorError, match="would not go through Tor"):
        _get(session, proxy, how)
    assert {name: listener.connections for name, listener in listeners.items()} == {
        "own": [],
        "other_port": [],
        "other_host": [],
    }
    # The control: a plain session with the same override does reach that listener (how it then
    # fails depends on whose SOCKS manager requests uses: importing yt-dlp replaces it).
    with requests.Session() as plain, pytest.raises(Exception):
        _get(plain, proxy, how)
    assert listeners["own" if target == "own_other_credentials" else target].connections


@pytest.mark.parametrize("config", ["generic", "webshare"])
def test_youtube_transcript_apis_proxy_config_cannot_take_the_session_elsewhere(listeners, config):
    host, port = listeners["other_host"].address
    # Webshare's config also mounts a plain HTTPAdapter (its retries) over the session's.
    proxy_config = (
        GenericProxyConfig(https_url=f"socks5h://{host}:{port}", http_url=f"socks5h://{host}:{port}")
        if config == "generic"
        else WebshareProxyConfig("user", "password", retries_when_blocked=1, domain_name=host, proxy_port=port)
    )
    with _session_on(listeners["own"]) as session, pytest.raises(TorError, match="would not go through Tor"):
        YouTubeTranscriptApi(proxy_config=proxy_config, http_client=session).list("abcdefghijk")
    assert all(listener.connections == [] for listener in listeners.values())
    with requests.Session() as plain, pytest.raises(Exception):  # the control: the library would go there
        YouTubeTranscriptApi(proxy_config=proxy_config, http_client=plain).list("abcdefghijk")
    assert listeners["other_host"].connections


def test_the_adapter_refuses_a_foreign_proxy_manager_too():
    adapter = TorOnlyAdapter((1.0, 1.0), lambda port: True, OWN_PROXY)
    assert adapter.proxy_manager_for(OWN_PROXY) is not None
    for proxy in (
        "socks5h://u:p@127.0.0.1:9051",
        "socks5h://u:q@127.0.0.1:9050",
        "socks5://u:p@127.0.0.1:9050",
        "socks5h://u:p@127.0.0.2:9050",
        "http://u:p@127.0.0.1:9050",
    ):
        with pytest.raises(TorError, match="would not go through Tor"):
            adapter.proxy_manager_for(proxy)


def test_socks_pools_stay_ours_after_yt_dlp_replaced_requests_socks_manager(monkeypatch):
    # Importing yt-dlp swaps requests.adapters.SOCKSProxyManager for its own class, whose
    # options our verified connections cannot read: the adapter must not pick it up.
    import requests.adapters
    import urllib3.contrib.socks
    from yt_dlp.networking._requests import SocksProxyManager

    monkeypatch.setattr(requests.adapters, "SOCKSProxyManager", SocksProxyManager)  # what its import does
    session = TorSession(TorEndpoint(socks_port=9999), username="ytsb-test-ytdlp")
    adapter = session.get_adapter("https://www.youtube.com/")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    manager = adapter.proxy_manager_for(session.proxies["https"])
    assert type(manager) is urllib3.contrib.socks.SOCKSProxyManager
    options = manager.connection_pool_kw["_socks_options"]
    assert (options["proxy_host"], options["proxy_port"], options["rdns"]) == ("127.0.0.1", 9999, True)
    assert options["username"] == "ytsb-test-ytdlp" and callable(options["stream_verifier"])
    assert set(manager.pool_classes_by_scheme.values()) == set(_VERIFIED_POOLS.values())


def test_importing_our_yt_dlp_driver_leaves_requests_socks_manager_alone():
    # In a fresh interpreter: nothing may have imported yt-dlp before.
    code = (
        "import requests.adapters, requests.utils, urllib3.contrib.socks, yt_study_buddy.youtube._ytdlp,"
        " yt_dlp.networking._requests;"
        "assert requests.adapters.SOCKSProxyManager is urllib3.contrib.socks.SOCKSProxyManager;"
        "assert requests.adapters.select_proxy is requests.utils.select_proxy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def pool_for(session: TorSession, url: str):
    """The urllib3 pool the session's adapter would send ``url`` through (no connection yet),
    after ``requests`` set its TLS verification as ``send()`` does."""
    request = requests.Request("GET", url).prepare()
    adapter = session.get_adapter(url)
    assert isinstance(adapter, TorOnlyAdapter)
    pool = adapter.get_connection_with_tls_context(request, session.verify, proxies=session.proxies)
    adapter.cert_verify(pool, url, session.verify, None)
    return pool


def test_every_session_verifies_with_one_shared_tls_context_per_trust_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # trust_bundle writes its combined file there
    endpoint = TorEndpoint(socks_port=9999)
    lab_ca = tmp_path / "lab-ca.pem"
    lab_ca.write_text(Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0] + CERT_END)
    first, second = (TorSession(endpoint, username=f"u{n}", ca_bundle=str(lab_ca)) for n in (1, 2))
    plain = TorSession(endpoint, username="u3")
    url = "https://www.youtube.com/watch?v=abcdefghijk"
    pools = [pool_for(session, url) for session in (first, second, plain)]
    context = tls_context(trust_bundle(str(lab_ca)))
    assert pools[0].conn_kw["ssl_context"] is pools[1].conn_kw["ssl_context"] is context
    assert pools[2].conn_kw["ssl_context"] is tls_context(certifi.where())  # verify=True: certifi's CAs
    for pool in pools:
        # urllib3 would load a bundle named here into the shared context on every connection.
        assert pool.ca_certs is None and pool.ca_cert_dir is None
        assert pool.conn_kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED
        assert pool.conn_kw["ssl_context"].check_hostname


def test_a_session_that_does_not_verify_gets_no_shared_context():
    session = TorSession(TorEndpoint(socks_port=9999), username="u1")
    session.verify = False
    pool = pool_for(session, "https://www.youtube.com/")
    assert "ssl_context" not in pool.conn_kw
    assert pool.cert_reqs == "CERT_NONE"


def test_a_closed_session_is_freed_without_the_cyclic_gc():
    gc.disable()  # only reference counting may free it
    try:
        session = TorSession(TorEndpoint(socks_port=9999), username="u1")
        verifier = session.get_adapter("https://www.youtube.com/")._verifier  # type: ignore[attr-defined]
        session.close()
        gone = weakref.ref(session)
        del session
        assert gone() is None
        assert verifier(12345) is False  # a connection of a session nobody holds carries nothing
    finally:
        gc.enable()
