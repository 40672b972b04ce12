"""``yt-study-buddy demo``: the real pipeline, offline, on a private Tor network and fake YouTube.

It re-runs itself in a fresh loopback-only network namespace, so nothing it starts can reach
beyond this machine, and it uses a throwaway exit ledger, never the user's own.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from .. import _settings
from .._exceptions import StudyBuddyError
from ._batch import BatchOptions
from ._progress import Reporter
from ._wiring import ClientSettings, Launch, open_run

log = logging.getLogger(__name__)


def run_demo(
    *,
    output: Path,
    videos: int,
    workers: int,
    exits: int,
    blocked: int,
    rotation: str,
    verbose: int,
    quiet: bool,
    reporter: Reporter,
) -> int:
    """Start the lab, run a batch through it, write real notes into ``output``; the exit status.

    ``verbose`` and ``quiet`` are passed on when the demo re-runs itself in a namespace.
    """
    from ..testing.netns import loopback_only, run_jailed

    if not loopback_only():
        argv = [
            sys.executable,
            "-m",
            "yt_study_buddy",
            "demo",
            "--output",
            str(output),
            "--videos",
            str(videos),
            "--workers",
            str(workers),
            "--exits",
            str(exits),
            "--blocked",
            str(blocked),
            "--rotation",
            rotation,
            *(["-v"] * verbose),
            *(["-q"] if quiet else []),
        ]
        return run_jailed(argv)

    try:
        from ..testing.fake_youtube import Behavior, FakeYouTube
    except ImportError as exc:  # trustme, for the fake YouTube's test CA
        raise StudyBuddyError(f"the demo needs the lab extra: pip install 'yt-study-buddy[lab]' ({exc})") from None
    from ..testing.fake_youtube._pages import sample_videos, with_chapters
    from ..testing.network import TorLab

    log.info("starting a private Tor network with %d exits and a fake YouTube (offline)", exits)
    with tempfile.TemporaryDirectory(prefix="ytsb-demo-") as tmp, TorLab(exits=exits) as lab, FakeYouTube() as fake:
        for video in sample_videos(videos):
            fake.add_video(with_chapters(video))
        for ip in lab.exit_ips[:blocked]:
            fake.block_exit(ip, Behavior.RECAPTCHA)
        if blocked:
            log.info(
                "the fake YouTube blocks exits %s, as YouTube blocks many Tor exits", ", ".join(lab.exit_ips[:blocked])
            )
        options = BatchOptions(output_dir=output, workers=workers, force=True)
        settings = ClientSettings(
            rotation=rotation, ca_bundle=str(fake.ca_path), ledger_path=Path(tmp) / _settings.LEDGER_FILENAME
        )
        with open_run(
            options,
            endpoint=lab.endpoint,
            settings=settings,
            launch=Launch(False, refused_hint="the demo's private network is gone"),
        ) as run:
            summary = run.make_runner(reporter).run([video.video_id for video in sample_videos(videos)])
        seen = fake.exits_seen()
        log.info(
            "the fake YouTube saw %d requests from %d distinct exits; notes are in %s",
            len(fake.requests),
            len(set(seen)),
            output,
        )
    return summary.exit_code
