"""check_exit_ip reads an echo service's answer: which shapes it trusts, and what it refuses.

The transport is a canned adapter (unit-level logic only); the real echo through Tor is tested
on the lab (test_tor_launcher, test_doctor, test_rotation_core)."""

from __future__ import annotations

import pytest
import requests
from requests.adapters import BaseAdapter

from yt_study_buddy._exceptions import ExitCheckError, TorError
from yt_study_buddy.tor._exit_check import check_exit_ip

URL = "https://check.torproject.org/api/ip"


class CannedAdapter(BaseAdapter):
    """Answers every request with one status and body, and remembers the URLs asked for."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type
        self.asked: list[str] = []

    def send(self, request, **kwargs):
        self.asked.append(request.url)
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body
        response.headers["Content-Type"] = self.content_type
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def answered(body: str | bytes, *, status: int = 200, content_type: str = "application/json") -> requests.Session:
    session = requests.Session()
    raw = body.encode() if isinstance(body, str) else body
    session.mount("https://", CannedAdapter(status, raw, content_type))
    return session


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('{"IsTor":true,"IP":"127.0.0.17"}', "application/json", "127.0.0.17"),  # check.torproject.org
        ('{"IP": "203.0.113.9"}', "application/json", "203.0.113.9"),
        ('{"ip": "198.51.100.4"}', "application/json", "198.51.100.4"),  # ipify and friends
        ("203.0.113.9\n", "text/plain", "203.0.113.9"),  # a bare address (icanhazip)
        ("  203.0.113.9  ", "text/plain", "203.0.113.9"),
        ('"203.0.113.9"', "application/json", "203.0.113.9"),  # a JSON string
        ('{"IsTor": true, "IP": "2001:DB8:0:0::7"}', "application/json", "2001:db8::7"),  # canonical form
        ("2001:db8::1\n", "text/plain", "2001:db8::1"),
    ],
    ids=["torproject", "IP", "ip", "bare", "padded", "json-string", "ipv6-json", "ipv6-bare"],
)
def test_accepted_answers(body: str, content_type: str, expected: str) -> None:
    with answered(body, content_type=content_type) as session:
        assert check_exit_ip(session, URL) == expected
        assert session.get_adapter(URL).asked == [URL]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        "",  # empty body
        "   \n",
        "<html><body>Sorry, you have been blocked</body></html>",  # a captive portal or a block page
        "not an address",
        '{"IsTor": true}',  # no address at all
        '{"IP": null}',
        '{"IP": ""}',
        '{"IP": 2130706433}',  # an integer is not an address, even if ip_address() would take it
        '{"IP": ["127.0.0.1"]}',
        '["127.0.0.1"]',
        "2130706433",  # a bare JSON number
        "127.0.0.999",
        "127.0.0.1, 127.0.0.2",  # more than one address
        "01.2.3.4",  # leading zeros are ambiguous (octal in some parsers)
        '{"Ip": "127.0.0.1"}',  # a key we do not know
    ],
    ids=[
        "empty",
        "blank",
        "html",
        "words",
        "no-ip",
        "null",
        "empty-ip",
        "int",
        "list-ip",
        "list",
        "number",
        "bad-octet",
        "two",
        "leading-zero",
        "unknown-key",
    ],
)
def test_anything_but_one_address_is_refused(body: str) -> None:
    with answered(body) as session, pytest.raises(ExitCheckError, match="did not answer with an IP address"):
        check_exit_ip(session, URL)


@pytest.mark.parametrize(
    "body",
    [
        '{"IsTor": false, "IP": "203.0.113.9"}',
        '{"IsTor": false}',
        '{"IsTor": "false", "IP": "203.0.113.9"}',
        '{"IsTor": 0, "IP": "203.0.113.9"}',
        '{"IsTor": null, "IP": "203.0.113.9"}',
    ],
    ids=["false", "false-no-ip", "string", "zero", "null"],
)
def test_an_echo_that_does_not_say_tor_is_refused(body: str) -> None:
    """Fail closed: an ``IsTor`` that is anything but true means the request may not have gone
    through Tor, whatever address came with it."""
    with answered(body) as session, pytest.raises(ExitCheckError, match="does not come from Tor") as raised:
        check_exit_ip(session, URL)
    assert isinstance(raised.value, TorError)
    assert "203.0.113.9" not in str(raised.value)


def test_an_http_error_propagates_as_a_requests_error() -> None:
    """Transport and HTTP failures are the caller's to judge (the circuit, or tor itself)."""
    with answered("203.0.113.9", status=503, content_type="text/plain") as session:
        with pytest.raises(requests.HTTPError):
            check_exit_ip(session, URL)
