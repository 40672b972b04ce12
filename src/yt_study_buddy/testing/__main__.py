"""``python -m yt_study_buddy.testing up|jail``: run a lab by hand, or a command in a jail."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .netns import exec_jailed


def _up(args: argparse.Namespace) -> int:
    from .network import TorLab

    with TorLab(exits=args.exits, workdir=args.workdir) as lab:
        ep = lab.endpoint
        print(f"lab ready in {lab.timings['total']:.1f} s  (phases: {lab.timings})")
        print(f"workdir       {lab.workdir}")
        print(f"SOCKS         {ep.socks_host}:{ep.socks_port}   e.g. {ep.socks_url('user1', 'x')}")
        print(f"control       {ep.control_host}:{ep.control_port}   cookie {lab.cookie_path}")
        for fp, ip in lab.exit_fingerprints.items():
            print(f"exit          {ip}  {fp}")
        print(f"other shells: nsenter --net=/proc/{os.getpid()}/ns/net COMMAND")
        print("Ctrl-C or SIGTERM stops the lab", flush=True)
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
        print("stopping", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yt_study_buddy.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a private Tor network and keep it running")
    up.add_argument("--exits", type=int, default=8)
    up.add_argument("--workdir", help="keep the lab's files here (default: a temporary directory)")
    jail = sub.add_parser("jail", help="run a command in a loopback-only network namespace")
    jail.add_argument(
        "--fresh",
        action="store_true",
        help="a namespace of its own even inside a jail (one per test worker: each has its own ports)",
    )
    jail.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stem").setLevel(logging.WARNING)  # its INFO lines are event-parsing noise
    if args.command == "jail":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("jail needs a command: jail -- CMD [ARG...]")
        exec_jailed(cmd, fresh=args.fresh)
    try:
        return _up(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
