"""Answers recorded from real YouTube, to hold the fake YouTube against.

youtube-transcript-api's source distribution ships them as test assets (a watch page with real
ytInitialData, InnerTube player answers for a playable video and for each error, the "unusual
traffic" page, the consent wall, a timedtext document). They are never copied into this
repository: ``fetch()`` downloads the sdist of the *installed* library version with pip, once, and
keeps only the assets in the user cache. That needs PyPI, so test.sh runs
``python -m yt_study_buddy.testing.recordings fetch`` before it enters the network jail, and
tests only read the cache (``load()``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib.metadata import version as installed
from pathlib import Path

from platformdirs import user_cache_dir

from .fake_youtube import Behavior, RecordedVideo

DISTRIBUTION = "youtube-transcript-api"
#: Where the assets sit inside the sdist (below its top-level ``name-version/`` folder).
_ASSET_DIR = "youtube_transcript_api/test/assets"
#: Written last into a complete cache entry: which sdist the assets came from, and its sha256.
_SOURCE = "SOURCE"
PIP_TIMEOUT = 600.0

WATCH_PAGE = "youtube.html.static"
PLAYER = "youtube.innertube.json.static"
TIMEDTEXT = "transcript.xml.static"
#: A second playable video (English tracks only, no recorded watch page).
PLAYER_EN_ONLY = "youtube_ww1_nl_en.innertube.json.static"


@dataclass(frozen=True)
class RecordedError:
    """A recorded error answer and the scripted behaviour that serves it where YouTube did.

    ``languages`` are what the fetch asks for (the PO-token recording gates only English)."""

    asset: str
    behavior: Behavior
    languages: tuple[str, ...] = ("en",)


#: Every recorded error answer. The "unusual traffic" page is served both as the 200 page the
#: library's tests use (RECAPTCHA) and with 429 (what google.com/sorry ends on).
RECORDED_ERRORS: tuple[RecordedError, ...] = (
    RecordedError("youtube_request_blocked.innertube.json.static", Behavior.BOT_CHECK),
    RecordedError("youtube_age_restricted.innertube.json.static", Behavior.AGE_RESTRICTED),
    RecordedError("youtube_video_unavailable.innertube.json.static", Behavior.UNAVAILABLE),
    RecordedError("youtube_unplayable.innertube.json.static", Behavior.UNPLAYABLE),
    RecordedError("youtube_transcripts_disabled.innertube.json.static", Behavior.TRANSCRIPTS_DISABLED),
    RecordedError("youtube_transcripts_disabled2.innertube.json.static", Behavior.TRANSCRIPTS_DISABLED),
    RecordedError("youtube_po_token_required.innertube.json.static", Behavior.PO_TOKEN),
    RecordedError("youtube_too_many_requests.html.static", Behavior.RECAPTCHA),
    RecordedError("youtube_too_many_requests.html.static", Behavior.RATE_LIMITED_WATCH),
    RecordedError("youtube_too_many_requests.html.static", Behavior.RATE_LIMITED_TIMEDTEXT),
    RecordedError("youtube_consent_page.html.static", Behavior.CONSENT),
)


class RecordingsMissing(RuntimeError):
    """The cache has no (complete) recordings for this library version."""


def installed_version() -> str:
    """The version of youtube-transcript-api this environment runs."""
    return installed(DISTRIBUTION)


def cache_dir(version: str | None = None) -> Path:
    """Where the assets of ``version`` (default: the installed one) are kept."""
    return Path(user_cache_dir("yt-study-buddy")) / "recordings" / (version or installed_version())


def fetch(version: str | None = None) -> Path:
    """Download the sdist with pip (needs PyPI) and cache its assets, unless already cached.

    The entry appears atomically (a renamed staging folder), so a crash leaves no half cache."""
    target = cache_dir(version)
    if (target / _SOURCE).is_file():
        return target
    if target.exists():  # an entry someone damaged: start over
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as work:
        archive = _download(version or installed_version(), Path(work) / "sdist")
        staging = Path(work) / "assets"
        staging.mkdir()
        _extract_assets(archive, staging)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        (staging / _SOURCE).write_text(f"{archive.name} sha256:{digest}\n")
        try:
            staging.rename(target)
        except OSError:
            if not (target / _SOURCE).is_file():  # not a concurrent fetch that won the race
                raise
    return target


def _download(version: str, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{DISTRIBUTION}=={version}",
        "--dest",
        str(into),
    ]
    subprocess.run(command, check=True, timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
    archives = sorted(into.glob("*.tar.gz"))
    if len(archives) != 1:
        raise RecordingsMissing(f"pip download left {[p.name for p in into.iterdir()]}, not one sdist")
    return archives[0]


def _extract_assets(archive: Path, into: Path) -> None:
    """Only the ``*.static`` files of the asset folder, each written under its bare name."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            folder, _, name = member.name.rpartition("/")
            if member.isfile() and folder.endswith("/" + _ASSET_DIR) and name.endswith(".static"):
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                (into / name).write_bytes(source.read())
    missing = {WATCH_PAGE, PLAYER, TIMEDTEXT} - {path.name for path in into.iterdir()}
    if missing:
        raise RecordingsMissing(f"{archive.name} lacks the test assets {sorted(missing)}")


@dataclass(frozen=True)
class Recordings:
    """The cached assets of one library version."""

    directory: Path

    @property
    def source(self) -> str:
        """Which sdist they came from, with its sha256."""
        return (self.directory / _SOURCE).read_text().strip()

    def read(self, asset: str) -> bytes:
        return (self.directory / asset).read_bytes()

    def player(self, asset: str = PLAYER) -> dict[str, object]:
        """A recorded player answer, parsed."""
        parsed = json.loads(self.read(asset))
        assert isinstance(parsed, dict)
        return parsed

    def video(self) -> RecordedVideo:
        """The playable recording: its watch page, player answer (9 tracks) and timedtext."""
        return RecordedVideo.from_answers(self.read(PLAYER), self.read(TIMEDTEXT), watch_page=self.read(WATCH_PAGE))

    def english_only_video(self) -> RecordedVideo:
        """The second playable recording (a manual and a generated English track); its watch
        page was not recorded, so the fake serves its own."""
        return RecordedVideo.from_answers(self.read(PLAYER_EN_ONLY), self.read(TIMEDTEXT))


def load(version: str | None = None) -> Recordings:
    """The cached recordings; ``RecordingsMissing`` (saying how to fetch them) if absent."""
    directory = cache_dir(version)
    if not (directory / _SOURCE).is_file():
        raise RecordingsMissing(
            f"no recorded YouTube answers in {directory}; fetch them (needs PyPI) with "
            f"`{Path(sys.executable).name} -m yt_study_buddy.testing.recordings fetch` "
            "(test.sh does, before it enters the network jail)"
        )
    return Recordings(directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yt_study_buddy.testing.recordings")
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="cache the recorded YouTube answers (downloads the sdist)")
    get.add_argument("--version", help=f"{DISTRIBUTION} version (default: the installed one)")
    args = parser.parse_args(argv)
    try:
        directory = fetch(args.version)
    except (OSError, subprocess.SubprocessError, tarfile.TarError, RecordingsMissing) as exc:
        print(f"recordings: could not fetch {DISTRIBUTION}'s recorded answers: {exc}", file=sys.stderr)
        return 1
    print(f"recordings: {directory} ({Recordings(directory).source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
