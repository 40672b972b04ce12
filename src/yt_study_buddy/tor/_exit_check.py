"""Asking an echo service which IP address a connection leaves Tor from."""

from __future__ import annotations

import ipaddress

import requests

from .._exceptions import ExitCheckError
from .._settings import DEFAULT_IP_CHECK_URL

__all__ = ["DEFAULT_IP_CHECK_URL", "check_exit_ip"]


def check_exit_ip(session: requests.Session, url: str = DEFAULT_IP_CHECK_URL) -> str:
    """Return the exit IP the echo service at ``url`` saw for a request on ``session``.

    Transport failures propagate as ``requests`` exceptions: the caller decides whether the
    circuit or tor itself is at fault.
    """
    response = session.get(url)
    response.raise_for_status()
    try:
        payload = response.json()
    except ValueError:
        payload = response.text.strip()
    if isinstance(payload, dict):
        # Fail closed: an IsTor that is there but not true ("false", 0, null) is not a yes.
        if "IsTor" in payload and payload["IsTor"] is not True:
            raise ExitCheckError(f"{url} says this connection does not come from Tor")
        payload = payload.get("IP", payload.get("ip"))
    try:
        return str(ipaddress.ip_address(str(payload)))
    except ValueError:
        raise ExitCheckError(f"{url} did not answer with an IP address") from None
