"""Where the Tor daemon listens and how to talk to it: plain values, no connections."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._settings import DEFAULT_CONTROL_PORT, DEFAULT_SOCKS_PORT, DEFAULT_TOR_HOST

# How the Tor layer's messages name the settings a user may have to change. A front end that
# spells them its own way (a command-line option, say) replaces these phrases where it reports.
#: The control port, as in "point the control port setting at it".
CONTROL_PORT_SETTING = "the control port setting"
#: The SOCKS port.
SOCKS_PORT_SETTING = "the SOCKS port setting"
#: The control password, as in "pass the control password".
CONTROL_PASSWORD_SETTING = "the control password"


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``HOST`` or ``:PORT``; ``[::1]:9050`` style IPv6 is accepted."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    host = host or "127.0.0.1"
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class TorEndpoint:
    """The SOCKS and control ports of one tor daemon, and the control password if it has one.

    Cookie authentication needs no setting here: stem finds the cookie file through
    PROTOCOLINFO. The password never appears in ``repr()`` or logs.
    """

    socks_host: str = DEFAULT_TOR_HOST
    socks_port: int = DEFAULT_SOCKS_PORT
    control_host: str = DEFAULT_TOR_HOST
    control_port: int = DEFAULT_CONTROL_PORT
    control_password: str | None = field(default=None, repr=False)

    def socks_url(self, username: str, password: str) -> str:
        """A ``socks5h`` proxy URL: the exit resolves host names, so no DNS leaves this machine."""
        host = f"[{self.socks_host}]" if ":" in self.socks_host else self.socks_host
        return f"socks5h://{username}:{password}@{host}:{self.socks_port}"
