"""Loopback-only network namespaces: the only place a lab tor may run (no traffic can leave)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)

_HINT = (
    "run it inside a loopback-only network namespace, e.g. ../shared/bin/netjail "
    "or `python -m yt_study_buddy.testing jail -- CMD`"
)
# Brings lo up (a new namespace starts with it down), then runs the command given after it.
_LO_UP = 'ip link set lo up && exec "$@"'
_PROBE_TIMEOUT = 10.0


def loopback_only() -> bool:
    """True when this process's network namespace holds no interface but ``lo``."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_loopback_only() -> None:
    """Refuse to go on where traffic could leave the machine; called before any tor starts."""
    if not loopback_only():
        names = ", ".join(name for _, name in socket.if_nameindex())
        raise RuntimeError(f"this network namespace has interfaces {names}: {_HINT}")


def _unshare_prefixes() -> list[list[str]]:
    """Ways to get a fresh network namespace, best first: root may unshare directly."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise RuntimeError("a loopback-only namespace needs unshare (util-linux) and ip (iproute2)")
    prefixes = [["unshare", "-rn"]]
    if os.geteuid() == 0:
        prefixes.insert(0, ["unshare", "--net"])
    return prefixes


def jailed_argv(argv: Sequence[str], *, fresh: bool = False) -> list[str]:
    """The command line that runs ``argv`` in a fresh loopback-only namespace (or as is, if here
    already, unless ``fresh``: a namespace of its own, whose ports no one else holds). Each way
    is probed first, so a refusal is an error here, not the command's status."""
    if not argv:
        raise ValueError("no command to run")
    if loopback_only() and not fresh:
        return list(argv)
    errors = []
    for prefix in _unshare_prefixes():
        probe = [*prefix, "--", "sh", "-c", _LO_UP, "jail", "true"]
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=_PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            errors.append(f"{' '.join(prefix)}: timed out")
            continue
        if done.returncode == 0:
            return [*prefix, "--", "sh", "-c", _LO_UP, "jail", *argv]
        errors.append(f"{' '.join(prefix)}: {done.stderr.strip() or done.returncode}")
    raise RuntimeError(
        "cannot create a loopback-only network namespace (needs root or unprivileged user "
        "namespaces): " + "; ".join(errors)
    )


def _jail_env() -> dict[str, str]:
    # ../shared/bin/netjail reads this to avoid nesting namespaces.
    return {**os.environ, "NETJAIL": "1"}


def run_jailed(argv: Sequence[str]) -> int:
    """Run ``argv`` in a loopback-only namespace and return its exit status."""
    full = jailed_argv(argv)
    log.debug("running jailed: %s", full)
    return subprocess.run(full, env=_jail_env()).returncode


def exec_jailed(argv: Sequence[str], *, fresh: bool = False) -> None:
    """Replace this process with ``argv`` running in a loopback-only namespace."""
    full = jailed_argv(argv, fresh=fresh)
    log.debug("exec jailed: %s", full)
    os.execvpe(full[0], full, _jail_env())
