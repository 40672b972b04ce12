"""Where the run's tor is: the one answering on the control port, or one we launch ourselves."""

from __future__ import annotations

import logging

from .._exceptions import TorUnavailable
from ._control import control_port_answers
from ._endpoint import TorEndpoint
from ._launcher import LaunchedTor, launch_tor

log = logging.getLogger(__name__)


def connect_or_launch(
    endpoint: TorEndpoint,
    *,
    launch: bool = True,
    refused_hint: str = "launching one is not allowed",
    launch_hint: str = "",
) -> tuple[TorEndpoint, LaunchedTor | None]:
    """The endpoint to use, and the tor we launched for it (None when one already answered).

    Only silence on the control port means there is no tor: a tor that answers but refuses us
    is reported by the client, not replaced. The caller stops the ``LaunchedTor`` (``with``).
    The hints end the error and the log line; the CLI names its flags there.
    """
    if control_port_answers(endpoint):
        return endpoint, None
    where = f"{endpoint.control_host}:{endpoint.control_port}"
    if not launch:
        raise TorUnavailable(f"no tor answers on its control port {where}, and {refused_hint}")
    log.info("no tor answers on %s; starting a tor of our own%s", where, f" ({launch_hint})" if launch_hint else "")
    launched = launch_tor()
    return launched.endpoint, launched
