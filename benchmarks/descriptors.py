"""How long a young lab's client goes without usable exit descriptors.

Relays republish their descriptors about 20 s and 80 s after they start; until the client
fetches the new ones it logs "The current consensus has no exit nodes" and new streams wait.
The lab's client fetches early (``FetchDirInfoEarly``/``FetchDirInfoExtraEarly``); this
measures the windows from the client's own log, with that setting or (``--lazy``) without it.
The test suite checks the setting and the log's wording (test_lab_network.py); timing lives here.

Inside a loopback-only network namespace:

    /work/shared/bin/netjail .venv/bin/python -m benchmarks.descriptors --seconds 150 [--lazy] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from yt_study_buddy.testing.network import TorLab

NO_EXITS = "The current consensus has no exit nodes"
HAS_EXITS = "The current consensus contains exit nodes"


def _stamp(line: str) -> datetime:
    return datetime.strptime(f"{datetime.now().year} {line[:19]}", "%Y %b %d %H:%M:%S.%f")


def windows(client_log: str, now: datetime) -> list[float]:
    """Seconds of each no-exit window after bootstrap (the first window, before any descriptor,
    is bootstrapping itself); a window still open ends ``now``."""
    found, began = [], None
    for line in client_log.splitlines():
        if NO_EXITS in line:
            began = began or _stamp(line)
        elif HAS_EXITS in line and began is not None:
            found.append((_stamp(line) - began).total_seconds())
            began = None
    if began is not None:
        found.append((now - began).total_seconds())
    return found[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.descriptors")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long to watch after start")
    parser.add_argument("--exits", type=int, default=12)
    parser.add_argument("--lazy", action="store_true", help="turn the early fetching off once started")
    parser.add_argument("--socks-port", type=int, default=9450)
    parser.add_argument("--control-port", type=int, default=9451)
    parser.add_argument("--port-base", type=int, default=7500)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    with TorLab(
        exits=args.exits, socks_port=args.socks_port, control_port=args.control_port, port_base=args.port_base
    ) as lab:
        if args.lazy:
            with lab.controller() as ctrl:
                ctrl.set_options({"FetchDirInfoEarly": "0", "FetchDirInfoExtraEarly": "0"})
        started = time.monotonic()
        time.sleep(max(0.0, args.seconds - lab.timings["total"]))
        watched = lab.timings["total"] + time.monotonic() - started
        found = windows((lab.workdir / "client" / "notice.log").read_text(), datetime.now())
    result = {
        "early_fetch": not args.lazy,
        "watched_s": round(watched, 1),
        "windows": len(found),
        "max_window_s": round(max(found, default=0.0), 3),
        "total_window_s": round(sum(found), 3),
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
