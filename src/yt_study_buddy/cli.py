"""The ``yt-study-buddy`` command: parse, wire, report. All the work lives in the library."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import _settings
from ._exceptions import SearchQueryError, StudyBuddyError
from .app._hints import CliHints, with_cli_hints
from .app._progress import Reporter, RichReporter, make_reporter
from .notes._formatters import FORMATS, clock
from .tor._endpoint import TorEndpoint, parse_host_port
from .tor._rotation import AUTO, ROTATIONS

if TYPE_CHECKING:
    from rich.console import Console

    from .app._batch import BatchOptions
    from .app._courses import ExpandedInputs
    from .app._wiring import ClientSettings
    from .tor._ledger import PostgresDsn
    from .youtube._courses import CourseRef

log = logging.getLogger("yt_study_buddy")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Exits the demo's network has beyond one per video and the blocked ones.
DEMO_SPARE_EXITS = 3
#: Ctrl-C outside a batch (a batch itself reports what it did and exits 1).
EXIT_INTERRUPTED = 130


class HostPort(click.ParamType[tuple[str, int], str]):
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


class LedgerLocation(click.ParamType[Any, str]):
    """``--ledger``: a ``postgresql://`` URL (a ``PostgresDsn``) or a SQLite file's path."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        from .tor._ledger import parse_ledger_location

        if not value.strip():
            self.fail("must not be empty", param, ctx)
        return parse_ledger_location(value)


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
    from .tor._redaction import protect, protect_stem

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler: logging.Handler
    if console is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(threadName)s %(name)s: %(message)s" if verbose else "%(message)s")
        )
    else:
        from rich.logging import RichHandler

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


class Failure(click.ClickException):
    """A runtime failure: one ``yt-study-buddy: error: ...`` line, exit 1 (or ``code``)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar; ours varies

    def show(self, file: Any = None) -> None:
        click.echo(f"yt-study-buddy: error: {self.format_message()}", err=True)


class Usage(Failure):
    """A usage error found after parsing (no videos, an unwritable output): exit 2, one line."""

    exit_code = EXIT_USAGE


F = TypeVar("F", bound=Callable[..., Any])


def option(*decls: str, env: bool = True, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` with its ``YTSB_`` variable named the same way for every option: after
    its first long flag (``--tor-socks``: ``YTSB_TOR_SOCKS``)."""
    if env:
        long = next(d for d in decls if d.startswith("--")).split("/")[0]
        attrs["envvar"] = "YTSB_" + long[2:].replace("-", "_").upper()
    return click.option(*decls, **attrs)


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, listed by ``--help`` in the order given."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


# Options that mean the same in several commands (fetch, enqueue, worker), defined once.
file_option = option(
    "-f", "--file", "file", help="Read URLs or ids from this file, one per line ('-' for stdin; # comments)."
)
note_options = options(
    option(
        "--format",
        "formats",
        type=click.Choice(FORMATS),
        multiple=True,
        help="Note format; repeat for several.  [default: md]",
    ),
    option(
        "--lang",
        "languages",
        multiple=True,
        help="Transcript language code, in priority order; repeatable.  [default: en]",
    ),
    option("--translate", help="Translate the transcript to this language code."),
)
exit_options = options(
    option(
        "--cooldown-hours",
        type=click.FloatRange(0),
        default=1.0,
        show_default=True,
        help="An exit is not reused for this long after its last use.",
    ),
    option(
        "--quarantine-hours",
        type=click.FloatRange(0),
        default=6.0,
        show_default=True,
        help="An exit YouTube blocked is avoided for this long.",
    ),
    option(
        "--rotation",
        type=click.Choice(ROTATIONS),
        default=AUTO,
        show_default=True,
        help="How fresh circuits are made: auto is pin on a tor of our own, isolate on a shared one.",
    ),
)
max_attempts_option = option(
    "--max-attempts",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Attempts per video, each on a fresh exit.",
)
course_options = options(
    option(
        "--yes-playlist/--no-playlist",
        "playlists",
        default=True,
        show_default=True,
        help="A watch URL with list= means the playlist (or only the video), as in yt-dlp.",
    ),
    option(
        "-I",
        "--playlist-items",
        "playlist_items",
        metavar="ITEMS",
        callback=lambda _ctx, _param, value: checked_items(value),
        help="Videos of each playlist or channel, as in yt-dlp: 1-10,15 or -5: (the last 5).",
    ),
)
no_launch_option = option(
    "--no-launch-tor",
    is_flag=True,
    help="Never start a tor of our own when none answers (courses are expanded through it).",
)


@dataclass
class Shared:
    """The options every command that talks to tor shares, gathered on the click context."""

    tor_socks: tuple[str, int] = (_settings.DEFAULT_TOR_HOST, _settings.DEFAULT_SOCKS_PORT)
    tor_control: tuple[str, int] = (_settings.DEFAULT_TOR_HOST, _settings.DEFAULT_CONTROL_PORT)
    tor_password: str | None = field(default=None, repr=False)
    ip_check_url: str = _settings.DEFAULT_IP_CHECK_URL
    ca_bundle: str | None = None
    verbose: int = 0
    quiet: bool = False

    @property
    def endpoint(self) -> TorEndpoint:
        return TorEndpoint(
            self.tor_socks[0], self.tor_socks[1], self.tor_control[0], self.tor_control[1], self.tor_password
        )


pass_shared = click.make_pass_decorator(Shared, ensure=True)


def _share(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    assert param.name is not None
    setattr(ctx.ensure_object(Shared), param.name, value)
    return value


def tor_options(func: Any) -> Any:
    """The options every command that talks to tor shares; the command takes them as ``Shared``."""
    shared: dict[str, Any] = {"callback": _share, "expose_value": False}
    socks, control = _settings.DEFAULT_SOCKS_PORT, _settings.DEFAULT_CONTROL_PORT
    options = [
        option(
            "--tor-socks",
            type=HostPort(socks),
            default=f"{_settings.DEFAULT_TOR_HOST}:{socks}",
            show_default=True,
            help="tor's SocksPort.",
            **shared,
        ),
        option(
            "--tor-control",
            type=HostPort(control),
            default=f"{_settings.DEFAULT_TOR_HOST}:{control}",
            show_default=True,
            help="tor's ControlPort.",
            **shared,
        ),
        option(
            "--tor-password", default=None, help="Control port password (cookie authentication needs none).", **shared
        ),
        option(
            "--ip-check-url",
            show_default=True,
            default=_settings.DEFAULT_IP_CHECK_URL,
            help="Echo service that shows an exit's IP.",
            **shared,
        ),
        option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            help="An extra CA certificate to trust (e.g. a TLS-inspecting proxy's).",
            **shared,
        ),
        option("-v", "--verbose", count=True, help="More diagnostics (-vv: stem's too).", **shared),
        option("-q", "--quiet", is_flag=True, help="Only failures and the summary.", **shared),
    ]
    for decorator in reversed(options):
        func = decorator(func)
    return pass_shared(func)


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=_settings.APP_NAME, prog_name=_settings.APP_NAME)  # looked up on --version only
def main() -> None:
    """Turn YouTube videos into study notes, fetched through Tor, each video on a fresh exit.

    \b
      yt-study-buddy https://youtube.com/watch?v=xyz
      yt-study-buddy --parallel --workers 3 --file urls.txt
      yt-study-buddy -p "https://www.youtube.com/playlist?list=PL..."   # a whole course
      yt-study-buddy search recursion   # find a moment in the notes
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
            raise Usage(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
        file_lines = text.splitlines()
        lines += file_lines
        sources += [f"{'stdin' if file == '-' else file}:{n}" for n in range(1, len(file_lines) + 1)]
    videos = read_video_list(lines, playlists=playlists)
    for number, _raw, message in videos.errors:
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
        raise Usage(f"output directory {directory} is not writable: {exc.strerror or exc}") from None


@main.command()
@click.argument("urls", nargs=-1)
@file_option
@option("-p", "--parallel", is_flag=True, help="Fetch several videos at once.")
@option(
    "-w",
    "--workers",
    type=click.IntRange(1, 32),
    default=3,
    show_default=True,
    help="Parallel workers (with --parallel).",
)
@option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("notes"),
    show_default=True,
    help="Where notes are written.",
)
@note_options
@exit_options
@max_attempts_option
@option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the exit ledger and the record of changes made to tor live.  [default: the user state dir]",
)
@option(
    "--ledger",
    "ledger",
    type=LedgerLocation(),
    help="The exit ledger: a SQLite file, or postgresql://USER@HOST/DB to share one with other machines "
    "(keep its password in ~/.pgpass or PGPASSWORD).  [default: exit-ledger.sqlite3 in --state-dir]",
)
@option("--force", is_flag=True, help="Fetch again what is already done.")
@no_launch_option
@option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@course_options
@tor_options
def fetch(
    shared: Shared,
    urls: tuple[str, ...],
    file: str | None,
    parallel: bool,
    workers: int,
    output: Path,
    formats: tuple[str, ...],
    languages: tuple[str, ...],
    translate: str | None,
    cooldown_hours: float,
    quarantine_hours: float,
    rotation: str,
    max_attempts: int,
    state_dir: Path | None,
    ledger: Path | PostgresDsn | None,
    force: bool,
    no_launch_tor: bool,
    as_json: bool,
    playlists: bool,
    playlist_items: str | None,
) -> None:
    """Fetch the transcripts of videos, playlists and channels (URLs or ids) into study notes."""
    from .app._batch import BatchOptions
    from .app._wiring import ClientSettings

    setup_logging(shared.verbose, shared.quiet)
    if not urls and file is None:
        raise Usage("no videos given: pass URLs or ids, or --file FILE (see --help)")
    inputs = read_inputs(urls, file, playlists=playlists)
    if not inputs.items:
        raise Usage("no valid video URLs or ids to fetch")
    check_writable(output)
    options = BatchOptions(
        output_dir=output,
        formats=formats or ("md",),
        languages=languages or ("en",),
        translate_to=translate,
        workers=workers if parallel else 1,
        max_attempts=max_attempts,
        force=force,
    )
    settings = ClientSettings(
        cooldown_hours=cooldown_hours,
        quarantine_hours=quarantine_hours,
        rotation=rotation,
        ip_check_url=shared.ip_check_url,
        ca_bundle=shared.ca_bundle,
        state_dir=state_dir,
        ledger_path=ledger,
    )
    try:
        code = run_batch(
            inputs.items,
            options,
            shared=shared,
            settings=settings,
            launch=not no_launch_tor,
            as_json=as_json,
            playlist_items=playlist_items,
        )
    except StudyBuddyError as exc:
        raise Failure(with_cli_hints(str(exc))) from None
    except KeyboardInterrupt:
        raise Failure("interrupted", EXIT_INTERRUPTED) from None
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


def run_batch(
    items: list[str | CourseRef],
    options: BatchOptions,
    *,
    shared: Shared,
    settings: ClientSettings,
    launch: bool,
    as_json: bool,
    playlist_items: str | None = None,
) -> int:
    """Connect to (or launch) tor, expand the courses, run the batch, report; returns the exit status."""
    from .app._courses import course_json, expand_inputs, failure_json
    from .app._progress import summary_json
    from .app._wiring import Launch, Run, open_run

    run: Run | None = None
    policy = Launch(
        launch,
        refused_hint="--no-launch-tor forbids starting one: start tor, point --tor-control "
        "at it, or drop --no-launch-tor",
        launch_hint="--no-launch-tor to refuse",
    )
    try:
        with open_run(options, endpoint=shared.endpoint, settings=settings, launch=policy) as run:
            expanded = expand_inputs(
                run.client, items, playlist_items=playlist_items, max_attempts=options.max_attempts
            )
            for failed in expanded.failures:
                click.echo(f"yt-study-buddy: skipping {failed.ref}: {failed.message}", err=True)
            runner = run.make_runner(cli_reporter(shared.verbose, shared.quiet))
            # Handles Ctrl-C itself: it always writes run_end and the course indexes.
            runner.run(expanded.video_ids, courses=expanded.courses, singles=expanded.singles)
    except KeyboardInterrupt:
        if run is None or run.runner is None or run.runner.summary is None:
            raise  # before the batch began: nothing to report
        run.runner.stopped_because = run.runner.stopped_because or "interrupted while closing down"
    assert run is not None and run.runner is not None and run.runner.summary is not None
    runner = run.runner
    summary = run.runner.summary
    # A batch stopped early (Ctrl-C, tor, the ledger, the disk) exits 1 even if nothing was left.
    code = summary.exit_code
    if runner.stopped_because or (expanded.failures and code == EXIT_OK):
        code = EXIT_FAILED
    if as_json:
        click.echo(
            json.dumps(
                {
                    **summary_json(summary),
                    "exit_code": code,
                    "courses": [course_json(c) for c in expanded.courses],
                    "failed_courses": [failure_json(f) for f in expanded.failures],
                },
                indent=2,
            )
        )
    return code


@main.command()
@click.argument("words", nargs=-1, required=True)
@option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("notes"),
    show_default=True,
    help="The notes to search (fetch's --output).",
)
@option("-n", "--limit", type=click.IntRange(1), default=20, show_default=True, help="At most this many hits.")
@option("--json", "as_json", is_flag=True, help="Print the hits as a JSON array on stdout.")
@option("--reindex", is_flag=True, help="Rebuild the index from the note files first.")
@option("-v", "--verbose", count=True, help="More diagnostics.")
@option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def search(
    words: tuple[str, ...], output: Path, limit: int, as_json: bool, reindex: bool, verbose: int, quiet: bool
) -> None:
    """Search the notes: each hit's video, its moment, the words around it and a link there.

    \b
    WORDS is an SQLite FTS5 query: words (all must match), "a phrase", recurs* (a prefix),
    OR, NOT, title:word. Exit status 0 with hits, 1 without, 2 for a bad query.
    """
    from .notes._search import NoteIndex, check_query

    setup_logging(verbose, quiet)
    query = " ".join(words)
    if not output.is_dir():
        raise Usage(f"no notes directory {output}: fetch notes into it first, or point --output at them")
    try:
        check_query(query)
        index = NoteIndex(output)
        if reindex or not index.exists():
            log.info("search: indexed %d notes in %s", index.rebuild(), output)
        elif changed := index.refresh():
            log.info("search: indexed %d new or changed notes", changed)
        bold = (click.style("", bold=True, reset=False), click.style("", reset=True))
        hits = index.search(query, limit=limit, highlight=("", "") if as_json else bold)
        if not hits and not index.count():
            log.warning("search: no Markdown notes in %s (search reads the .md notes)", output)
    except SearchQueryError as exc:
        raise Usage(str(exc)) from None
    except StudyBuddyError as exc:
        raise Failure(str(exc)) from None
    if as_json:
        click.echo(json.dumps([hit.to_json() for hit in hits], ensure_ascii=False, indent=2))
    for hit in [] if as_json else hits:
        click.echo(f"{hit.title}  {clock(hit.start)}  {hit.snippet}  {hit.url}")
    sys.exit(EXIT_OK if hits else EXIT_FAILED)


@main.command()
@click.option("--fix", is_flag=True, help="Undo what a crashed run left in tor (stream attachment, conflux).")
@option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The runs' --state-dir, where they record what they change in tor.  [default: the user state dir]",
)
@tor_options
def doctor(shared: Shared, fix: bool, state_dir: Path | None) -> None:
    """Check each link of the chain: tor, its ports, an exit, YouTube; print the fix for what fails."""
    from .app._doctor import format_checks, run_checks

    setup_logging(shared.verbose, shared.quiet)
    checks = run_checks(
        shared.endpoint, ip_check_url=shared.ip_check_url, ca_bundle=shared.ca_bundle, fix=fix, state_dir=state_dir
    )
    click.echo(format_checks(checks))
    sys.exit(EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED)


# The demo's options have no YTSB_ variables: a YTSB_OUTPUT meant for fetch must not send the
# demo's notes into the user's own notes.
@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("notes-demo"),
    show_default=True,
    help="Where the demo's notes are written.",
)
@click.option("--videos", type=click.IntRange(1, 40), default=9, show_default=True)
@click.option("--workers", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option(
    "--exits",
    type=click.IntRange(3, 100),
    help="Exit relays of the private network.  [default: one per video, plus the blocked ones, plus 3 spare]",
)
@click.option(
    "--blocked",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    help="How many exits the fake YouTube blocks.",
)
@click.option("--rotation", type=click.Choice(ROTATIONS), default=AUTO, show_default=True)
@click.option("-v", "--verbose", count=True)
@click.option("-q", "--quiet", is_flag=True)
def demo(
    output: Path, videos: int, workers: int, exits: int | None, blocked: int, rotation: str, verbose: int, quiet: bool
) -> None:
    """Run a whole parallel batch offline: a private Tor network and a fake YouTube on this machine."""
    from .app._demo import run_demo

    setup_logging(verbose, quiet)
    # Spares: tor picks exits by weight, and a fresh network may favour a few of them for a
    # while, so with exactly one exit per video the last free ones can go unpicked.
    exits = exits or videos + blocked + DEMO_SPARE_EXITS
    if exits < videos + blocked:  # each video needs a fresh exit, and the blocked ones are used up
        raise Usage(
            f"--exits {exits} is too few for {videos} videos with {blocked} blocked exits: "
            f"give at least {videos + blocked}"
        )
    check_writable(output)
    try:
        code = run_demo(
            output=output.resolve(),
            videos=videos,
            workers=workers,
            exits=exits,
            blocked=blocked,
            rotation=rotation,
            verbose=verbose,
            quiet=quiet,
            reporter=cli_reporter(verbose, quiet),
        )
    except StudyBuddyError as exc:
        raise Failure(with_cli_hints(str(exc))) from None
    except KeyboardInterrupt:
        raise Failure("interrupted", EXIT_INTERRUPTED) from None
    sys.exit(code)


# -- distributed runs: a job queue in PostgreSQL, workers on many machines --------------------


class QueueLocation(click.ParamType[Any, str]):
    """``--queue``: a ``postgresql://`` URL."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        from .tor._ledger import PostgresDsn

        try:
            return PostgresDsn(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def queue_options(func: Any) -> Any:
    """``--queue``, which defaults to ``--ledger`` when that names a PostgreSQL database."""
    func = option(
        "--ledger",
        "ledger",
        type=LedgerLocation(),
        help="The exit ledger.  [default: the --queue database]",
    )(func)
    return option(
        "--queue",
        "queue",
        type=QueueLocation(),
        help="The job queue's database, postgresql://USER@HOST/DB (keep its password in ~/.pgpass "
        "or PGPASSWORD).  [default: --ledger, when that is PostgreSQL]",
    )(func)


def open_queue(queue: PostgresDsn | None, ledger: Path | PostgresDsn | None) -> Any:
    """The ``JobQueue`` named by ``--queue`` (or a PostgreSQL ``--ledger``); a usage error without."""
    from .tor._ledger import PostgresDsn

    queue = queue or (ledger if isinstance(ledger, PostgresDsn) else None)
    if queue is None:
        raise Usage("no job queue: pass --queue postgresql://USER@HOST/DB (or set YTSB_QUEUE)")
    try:
        from .app._distributed import JobQueue
    except ImportError as exc:
        raise Usage(f"distributed runs need procrastinate: pip install 'yt-study-buddy[distributed]' ({exc})") from None
    return JobQueue(queue)


@main.command()
@click.argument("urls", nargs=-1)
@file_option
@note_options
@max_attempts_option
@course_options
@no_launch_option
@option("--json", "as_json", is_flag=True, help="Print what was added on stdout as JSON.")
@queue_options
@tor_options
def enqueue(
    shared: Shared,
    urls: tuple[str, ...],
    file: str | None,
    formats: tuple[str, ...],
    languages: tuple[str, ...],
    translate: str | None,
    max_attempts: int,
    playlists: bool,
    playlist_items: str | None,
    no_launch_tor: bool,
    as_json: bool,
    queue: PostgresDsn | None,
    ledger: Path | PostgresDsn | None,
) -> None:
    """Add one job per video (courses expanded through tor) to the queue; done or queued ones are left out."""
    from .app._courses import ExpandedInputs
    from .app._distributed import JobOptions

    setup_logging(shared.verbose, shared.quiet)
    jobs = open_queue(queue, ledger)
    if not urls and file is None:
        raise Usage("no videos given: pass URLs or ids, or --file FILE (see --help)")
    inputs = read_inputs(urls, file, playlists=playlists)
    if not inputs.items:
        raise Usage("no valid video URLs or ids to enqueue")
    expanded = ExpandedInputs(video_ids=list(inputs.ids), singles=list(inputs.ids))
    try:
        if len(inputs.ids) < len(inputs.items):  # courses: expanded on checked exits, as a batch does
            expanded = expand_for_queue(inputs.items, shared, jobs, ledger, no_launch_tor, playlist_items, max_attempts)
        done = jobs.enqueue(
            expanded.video_ids,
            JobOptions(formats or ("md",), languages or ("en",), translate, max_attempts),
            courses=expanded.courses,
            singles=expanded.singles,
        )
    except StudyBuddyError as exc:
        raise Failure(with_cli_hints(str(exc))) from None
    if as_json:
        click.echo(json.dumps({"added": done.added, "already": done.already}, indent=2))
    else:
        click.echo(f"{len(done.added)} videos queued, {len(done.already)} already done or queued", err=True)
    sys.exit(EXIT_FAILED if inputs.invalid or expanded.failures else EXIT_OK)


def expand_for_queue(
    items: list[str | CourseRef],
    shared: Shared,
    jobs: Any,
    ledger: Path | PostgresDsn | None,
    no_launch_tor: bool,
    playlist_items: str | None,
    max_attempts: int,
) -> ExpandedInputs:
    """The videos of ``items``, courses expanded through tor (exits from the shared ledger)."""
    from .app._courses import expand_inputs
    from .app._wiring import ClientSettings, Launch, open_client

    settings = ClientSettings(
        ip_check_url=shared.ip_check_url, ca_bundle=shared.ca_bundle, ledger_path=ledger or jobs.dsn
    )
    with open_client(
        shared.endpoint, settings, launch=Launch(not no_launch_tor, launch_hint="--no-launch-tor to refuse")
    ) as client:
        expanded = expand_inputs(client, items, playlist_items=playlist_items, max_attempts=max_attempts)
    for failed in expanded.failures:
        click.echo(f"yt-study-buddy: skipping {failed.ref}: {failed.message}", err=True)
    return expanded


@main.command()
@option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 32),
    default=3,
    show_default=True,
    help="Jobs run at once on this machine.",
)
@option("--name", default=None, help="This worker's name in logs and the notes' records.  [default: the host name]")
@exit_options
@option(
    "--heartbeat",
    type=click.FloatRange(0.5),
    default=10.0,
    show_default=True,
    help="Seconds between heartbeats; a worker silent for 3 of them is taken for dead and its jobs are retried.",
)
@option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the record of changes made to tor lives.  [default: the user state dir]",
)
@no_launch_option
@queue_options
@tor_options
def worker(
    shared: Shared,
    concurrency: int,
    name: str | None,
    cooldown_hours: float,
    quarantine_hours: float,
    rotation: str,
    heartbeat: float,
    state_dir: Path | None,
    no_launch_tor: bool,
    queue: PostgresDsn | None,
    ledger: Path | PostgresDsn | None,
) -> None:
    """Run the queue's jobs on this machine, through its own tor, until SIGINT or SIGTERM."""
    import socket

    from .app._distributed import WorkerSettings
    from .app._wiring import ClientSettings, Launch, open_client

    setup_logging(shared.verbose, shared.quiet)
    jobs = open_queue(queue, ledger)
    settings = ClientSettings(
        cooldown_hours=cooldown_hours,
        quarantine_hours=quarantine_hours,
        rotation=rotation,
        ip_check_url=shared.ip_check_url,
        ca_bundle=shared.ca_bundle,
        state_dir=state_dir,
        ledger_path=ledger or jobs.dsn,
    )
    policy = Launch(
        not no_launch_tor,
        refused_hint="--no-launch-tor forbids starting one: start tor, point --tor-control at it, or drop --no-launch-tor",
        launch_hint="--no-launch-tor to refuse",
    )
    try:
        jobs.prepare()  # a queue that cannot be used fails before tor is asked for anything
        with open_client(shared.endpoint, settings, launch=policy) as client:
            jobs.run_worker(
                client,
                WorkerSettings(
                    concurrency, heartbeat=heartbeat, stalled_after=3 * heartbeat, name=name or socket.gethostname()
                ),
                cli_reporter(shared.verbose, shared.quiet),
            )
    except StudyBuddyError as exc:
        raise Failure(with_cli_hints(str(exc))) from None
    except KeyboardInterrupt:
        raise Failure("interrupted", EXIT_INTERRUPTED) from None


@main.command()
@option("--json", "as_json", is_flag=True, help="Print the counts (and the failures) as JSON on stdout.")
@option("-v", "--verbose", count=True, help="More diagnostics.")
@option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@queue_options
def status(
    as_json: bool, verbose: int, quiet: bool, queue: PostgresDsn | None, ledger: Path | PostgresDsn | None
) -> None:
    """What the queue's videos are, across all workers: done, running, failed, pending."""
    setup_logging(verbose, quiet)
    jobs = open_queue(queue, ledger)
    try:
        counts = jobs.status()
    except StudyBuddyError as exc:
        raise Failure(str(exc)) from None
    if as_json:
        click.echo(json.dumps(counts.to_json(), indent=2))
        return
    click.echo(f"done {counts.done}, running {counts.running}, failed {counts.failed}, pending {counts.pending}")
    for video_id, error in sorted(counts.failures.items()):
        click.echo(f"failed {video_id}: {error}")


@main.command()
@option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("notes"),
    show_default=True,
    help="Where the notes are written.",
)
@option("-v", "--verbose", count=True, help="More diagnostics.")
@option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@queue_options
def export(
    output: Path, verbose: int, quiet: bool, queue: PostgresDsn | None, ledger: Path | PostgresDsn | None
) -> None:
    """Write the notes the workers stored in the queue's database into --output."""
    setup_logging(verbose, quiet)
    jobs = open_queue(queue, ledger)
    check_writable(output)
    try:
        written = jobs.export(output)
    except StudyBuddyError as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise Failure(f"cannot write notes in {output}: {exc.strerror or exc}") from None
    click.echo(f"{len(written)} files (notes, course indexes) in {output}", err=True)
