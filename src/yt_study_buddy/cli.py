"""The ``yt-study-buddy`` command: parse, wire, report. All the work lives in the library."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import platformdirs
from rich.console import Console

from ._exceptions import StudyBuddyError, TorUnavailable
from .notes._formatters import FORMATS
from .app._progress import Reporter, RichReporter, make_reporter
from .app._hints import CliHints, with_cli_hints
from .tor._rotation import STRATEGIES
from .tor._control import control_port_answers
from .tor._endpoint import TorEndpoint, parse_host_port

if TYPE_CHECKING:
    from .app._batch import BatchOptions
    from .youtube._courses import CourseRef

log = logging.getLogger("yt_study_buddy")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Exits the demo's network has beyond one per video and the blocked ones.
DEMO_SPARE_EXITS = 3
#: Ctrl-C outside a batch (a batch itself reports what it did and exits 1).
EXIT_INTERRUPTED = 130


class HostPort(click.ParamType):
    name = "HOST:PORT"

    def __init__(self, default_port: int) -> None:
        self.default_port = default_port

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_host_port(str(value), self.default_port)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DefaultCommandGroup(click.Group):
    """``yt-study-buddy URL ...`` means ``yt-study-buddy fetch URL ...``, as users expect."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["fetch", *args]
        return super().parse_args(ctx, args)


def setup_logging(verbose: int, quiet: bool, console: Console | None = None) -> None:
    """Log to stderr; through ``console`` while a live progress bar owns it, so lines don't tear it.

    Every line is redacted first: stem's -vv trace would show the control password and cookie.
    """
    from rich.logging import RichHandler

    from .tor._redaction import protect, protect_stem

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler: logging.Handler
    if console is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(threadName)s %(name)s: %(message)s" if verbose else "%(message)s"))
    else:
        handler = RichHandler(console=console, show_time=bool(verbose), show_path=False)
    protect(handler)
    handler.addFilter(CliHints())  # the Tor layer names settings in words; say our options
    protect_stem()
    stem_log = logging.getLogger("stem")
    for old in log.handlers:
        stem_log.removeHandler(old)
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if verbose > 1:  # -vv: stem's own chatter too
        stem_log.addHandler(handler)


def cli_reporter(verbose: int, quiet: bool) -> Reporter:
    """The progress reporter on stderr; with the live bar, logging goes through its console."""
    reporter = make_reporter(sys.stderr, quiet=quiet)
    if isinstance(reporter, RichReporter):
        setup_logging(verbose, quiet, reporter.console)
    return reporter


def fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"yt-study-buddy: error: {message}", err=True)
    sys.exit(code)


def tor_options(func: Any) -> Any:
    """The options every command that talks to tor shares."""
    options = [
        click.option("--tor-socks", type=HostPort(9050), default="127.0.0.1:9050", show_default=True,
                     envvar="YTSB_TOR_SOCKS", help="tor's SocksPort."),
        click.option("--tor-control", type=HostPort(9051), default="127.0.0.1:9051", show_default=True,
                     envvar="YTSB_TOR_CONTROL", help="tor's ControlPort."),
        click.option("--tor-password", envvar="YTSB_TOR_PASSWORD", default=None,
                     help="Control port password (cookie authentication needs none)."),
        click.option("--ip-check-url", envvar="YTSB_IP_CHECK_URL", show_default=True,
                     default="https://check.torproject.org/api/ip", help="Echo service that shows an exit's IP."),
        click.option("--ca-bundle", envvar="YTSB_CA_BUNDLE", type=click.Path(exists=True, dir_okay=False),
                     help="An extra CA certificate to trust (e.g. a TLS-inspecting proxy's)."),
        click.option("-v", "--verbose", count=True, help="More diagnostics (-vv: stem's too)."),
        click.option("-q", "--quiet", is_flag=True, envvar="YTSB_QUIET", help="Only failures and the summary."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def endpoint_from(tor_socks: tuple[str, int], tor_control: tuple[str, int], password: str | None) -> TorEndpoint:
    return TorEndpoint(tor_socks[0], tor_socks[1], tor_control[0], tor_control[1], password)


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("yt-study-buddy"), prog_name="yt-study-buddy")
def main() -> None:
    """Turn YouTube videos into study notes, fetched through Tor, each video on a fresh exit.

    \b
      yt-study-buddy https://youtube.com/watch?v=xyz
      yt-study-buddy --parallel --workers 3 --file urls.txt
      yt-study-buddy -p "https://www.youtube.com/playlist?list=PL..."   # a whole course
      yt-study-buddy doctor      # check the whole chain
      yt-study-buddy demo        # everything, offline, on a private Tor network
    """


@dataclass(frozen=True)
class Inputs:
    ids: list[str]
    invalid: int
    #: Videos and courses (playlists, channels) in input order.
    items: list[str | CourseRef]


def read_inputs(urls: tuple[str, ...], file: str | None, *, playlists: bool = True) -> Inputs:
    """Arguments and file lines to unique videos and courses; bad ones are reported with their place."""
    from .youtube._video_ids import read_video_list

    lines: list[str] = list(urls)
    sources = [f"argument {n}" for n in range(1, len(urls) + 1)]
    if file is not None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}", EXIT_USAGE)
        file_lines = text.splitlines()
        lines += file_lines
        sources += [f"{'stdin' if file == '-' else file}:{n}" for n in range(1, len(file_lines) + 1)]
    videos = read_video_list(lines, playlists=playlists)
    for number, raw, message in videos.errors:
        click.echo(f"yt-study-buddy: skipping {sources[number - 1]}: {message}", err=True)
    if videos.duplicates:
        log.info("%d duplicate video(s) will be fetched once", len(videos.duplicates))
    return Inputs(videos.ids, len(videos.errors), videos.items)


def check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        fail(f"output directory {directory} is not writable: {exc.strerror or exc}", EXIT_USAGE)


@main.command()
@click.argument("urls", nargs=-1)
@click.option("-f", "--file", "file", envvar="YTSB_FILE",
              help="Read URLs or ids from this file, one per line ('-' for stdin; # comments).")
@click.option("-p", "--parallel", is_flag=True, envvar="YTSB_PARALLEL", help="Fetch several videos at once.")
@click.option("-w", "--workers", type=click.IntRange(1, 32), default=3, show_default=True, envvar="YTSB_WORKERS",
              help="Parallel workers (with --parallel).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("notes"),
              show_default=True, envvar="YTSB_OUTPUT", help="Where notes are written.")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True, envvar="YTSB_FORMAT",
              help="Output format; repeat for several.  [default: md]")
@click.option("--lang", "languages", multiple=True, envvar="YTSB_LANG",
              help="Transcript language code, in priority order; repeatable.  [default: en]")
@click.option("--translate", envvar="YTSB_TRANSLATE", help="Translate the transcript to this language code.")
@click.option("--cooldown-hours", type=click.FloatRange(0), default=1.0, show_default=True,
              envvar="YTSB_COOLDOWN_HOURS", help="An exit is not reused for this long after its last use.")
@click.option("--quarantine-hours", type=click.FloatRange(0), default=6.0, show_default=True,
              envvar="YTSB_QUARANTINE_HOURS", help="An exit YouTube blocked is avoided for this long.")
@click.option("--rotation", type=click.Choice(sorted(STRATEGIES)), default="isolate", show_default=True,
              envvar="YTSB_ROTATION", help="How fresh circuits are made (see docs/architecture.md).")
@click.option("--max-attempts", type=click.IntRange(1, 20), default=3, show_default=True,
              envvar="YTSB_MAX_ATTEMPTS", help="Attempts per video, each on a fresh exit.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="YTSB_STATE_DIR",
              help="Where the exit ledger lives.  [default: the user state dir]")
@click.option("--force", is_flag=True, envvar="YTSB_FORCE", help="Fetch again what is already done.")
@click.option("--no-launch-tor", is_flag=True, envvar="YTSB_NO_LAUNCH_TOR",
              help="Never start a tor of our own when none answers.")
@click.option("--json", "as_json", is_flag=True, envvar="YTSB_JSON", help="Print a JSON summary on stdout.")
@click.option("--yes-playlist/--no-playlist", "playlists", default=True, show_default=True,
              help="A watch URL with list= means the playlist (or only the video), as in yt-dlp.")
@click.option("-I", "--playlist-items", "playlist_items", metavar="ITEMS",
              callback=lambda _ctx, _param, value: checked_items(value),
              help="Videos of each playlist or channel to fetch, as in yt-dlp: 1-10,15 or -5: (the last 5).")
@tor_options
def fetch(urls: tuple[str, ...], file: str | None, parallel: bool, workers: int, output: Path,
          formats: tuple[str, ...], languages: tuple[str, ...], translate: str | None, cooldown_hours: float,
          quarantine_hours: float, rotation: str, max_attempts: int, state_dir: Path | None, force: bool,
          no_launch_tor: bool, as_json: bool, playlists: bool, playlist_items: str | None,
          tor_socks: tuple[str, int], tor_control: tuple[str, int], tor_password: str | None, ip_check_url: str,
          ca_bundle: str | None, verbose: int, quiet: bool) -> None:
    """Fetch the transcripts of videos, playlists and channels (URLs or ids) into study notes."""
    setup_logging(verbose, quiet)
    if not urls and file is None:
        fail("no videos given: pass URLs or ids, or --file FILE (see --help)", EXIT_USAGE)
    inputs = read_inputs(urls, file, playlists=playlists)
    if not inputs.items:
        fail("no valid video URLs or ids to fetch", EXIT_USAGE)
    check_writable(output)
    from .app._batch import BatchOptions
    options = BatchOptions(output_dir=output, formats=formats or ("md",), languages=languages or ("en",),
                           translate_to=translate, workers=workers if parallel else 1,
                           max_attempts=max_attempts, force=force)
    endpoint = endpoint_from(tor_socks, tor_control, tor_password)
    state = state_dir or platformdirs.user_state_path("yt-study-buddy")
    try:
        code = run_batch(inputs.items, options, endpoint=endpoint, launch=not no_launch_tor, state_dir=state,
                         cooldown_hours=cooldown_hours, quarantine_hours=quarantine_hours, rotation=rotation,
                         ip_check_url=ip_check_url, ca_bundle=ca_bundle, verbose=verbose, quiet=quiet,
                         as_json=as_json, playlist_items=playlist_items)
    except StudyBuddyError as exc:
        fail(with_cli_hints(str(exc)))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    sys.exit(EXIT_FAILED if inputs.invalid and code == EXIT_OK else code)


def checked_items(spec: str | None) -> str | None:
    """``-I``, checked like yt-dlp checks it, before tor is asked for anything."""
    if spec is None:
        return None
    from .youtube._courses import check_playlist_items
    try:
        return check_playlist_items(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def run_batch(items: list[str | CourseRef], options: BatchOptions, *, endpoint: TorEndpoint, launch: bool,
              state_dir: Path, cooldown_hours: float, quarantine_hours: float, rotation: str, ip_check_url: str,
              ca_bundle: str | None, verbose: int, quiet: bool, as_json: bool,
              playlist_items: str | None = None) -> int:
    """Connect to (or launch) tor, expand the courses, run the batch, report; returns the exit status."""
    from .app._batch import BatchRunner
    from .app._courses import course_json, expand_inputs, failure_json
    from .app._progress import summary_json
    from .tor._client import RotatingTorClient
    from .app._run_log import RunLog

    runner: BatchRunner | None = None
    try:
        with ExitStack() as stack:
            if not control_port_answers(endpoint):
                where = f"{endpoint.control_host}:{endpoint.control_port}"
                if not launch:
                    raise TorUnavailable(f"no tor answers on its control port {where}, and --no-launch-tor forbids "
                                         "starting one: start tor, point --tor-control at it, or drop --no-launch-tor")
                from .tor._launcher import launch_tor
                log.info("no tor answers on %s; starting a tor of our own (--no-launch-tor to refuse)", where)
                endpoint = stack.enter_context(launch_tor()).endpoint
            client = stack.enter_context(RotatingTorClient(
                cooldown_hours, endpoint=endpoint, strategy=rotation, ip_check_url=ip_check_url,
                ledger_path=state_dir / "exit-ledger.sqlite3", quarantine_hours=quarantine_hours,
                ca_bundle=ca_bundle))
            expanded = expand_inputs(client, items, playlist_items=playlist_items, max_attempts=options.max_attempts)
            for failed in expanded.failures:
                click.echo(f"yt-study-buddy: skipping {failed.ref}: {failed.message}", err=True)
            runner = BatchRunner(client, options, reporter=cli_reporter(verbose, quiet),
                                 run_log=RunLog(options.output_dir / ".yt-study-buddy" / "runs.jsonl"))
            runner.run(expanded.video_ids)  # handles Ctrl-C itself: it always writes run_end
    except KeyboardInterrupt:
        if runner is None or runner.summary is None:
            raise  # before the batch began: nothing to report
        runner.stopped_because = runner.stopped_because or "interrupted while closing down"
    assert runner is not None and runner.summary is not None
    summary = runner.summary
    # A batch stopped early (Ctrl-C, tor, the ledger, the disk) exits 1 even if nothing was left.
    code = summary.exit_code
    if runner.stopped_because or (expanded.failures and code == EXIT_OK):
        code = EXIT_FAILED
    if as_json:
        click.echo(json.dumps({**summary_json(summary), "exit_code": code,
                               "courses": [course_json(c) for c in expanded.courses],
                               "failed_courses": [failure_json(f) for f in expanded.failures]}, indent=2))
    return code


@main.command()
@click.option("--fix", is_flag=True, help="Undo what a crashed run left in tor (stream attachment, conflux).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="YTSB_STATE_DIR",
              help="The runs' --state-dir, where they record what they change in tor.  [default: the user state dir]")
@tor_options
def doctor(fix: bool, state_dir: Path | None, tor_socks: tuple[str, int], tor_control: tuple[str, int],
           tor_password: str | None, ip_check_url: str, ca_bundle: str | None, verbose: int, quiet: bool) -> None:
    """Check each link of the chain: tor, its ports, an exit, YouTube; print the fix for what fails."""
    from .app._doctor import format_checks, run_checks

    setup_logging(verbose, quiet)
    checks = run_checks(endpoint_from(tor_socks, tor_control, tor_password), ip_check_url=ip_check_url,
                        ca_bundle=ca_bundle, fix=fix, state_dir=state_dir)
    click.echo(format_checks(checks))
    sys.exit(EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED)


@main.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("notes-demo"),
              show_default=True, help="Where the demo's notes are written.")
@click.option("--videos", type=click.IntRange(1, 40), default=9, show_default=True)
@click.option("--workers", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option("--exits", type=click.IntRange(3, 100),
              help="Exit relays of the private network.  [default: one per video, plus the blocked ones, "
                   "plus 3 spare]")
@click.option("--blocked", type=click.IntRange(0, 20), default=2, show_default=True,
              help="How many exits the fake YouTube blocks.")
@click.option("--rotation", type=click.Choice(sorted(STRATEGIES)), default="isolate", show_default=True)
@click.option("-v", "--verbose", count=True)
@click.option("-q", "--quiet", is_flag=True)
def demo(output: Path, videos: int, workers: int, exits: int | None, blocked: int, rotation: str,
         verbose: int, quiet: bool) -> None:
    """Run a whole parallel batch offline: a private Tor network and a fake YouTube on this machine."""
    from .app._demo import run_demo

    setup_logging(verbose, quiet)
    # Spares: tor picks exits by weight, and a fresh network may favour a few of them for a
    # while, so with exactly one exit per video the last free ones can go unpicked.
    exits = exits or videos + blocked + DEMO_SPARE_EXITS
    if exits < videos + blocked:  # each video needs a fresh exit, and the blocked ones are used up
        fail(f"--exits {exits} is too few for {videos} videos with {blocked} blocked exits: "
             f"give at least {videos + blocked}", EXIT_USAGE)
    check_writable(output)
    try:
        code = run_demo(output=output.resolve(), videos=videos, workers=workers, exits=exits, blocked=blocked,
                        rotation=rotation, verbose=verbose, quiet=quiet, reporter=cli_reporter(verbose, quiet))
    except StudyBuddyError as exc:
        fail(with_cli_hints(str(exc)))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    sys.exit(code)
