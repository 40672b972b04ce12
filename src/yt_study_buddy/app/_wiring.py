"""One way to wire a run: tor (found or launched), the client and its exit ledger, the run log,
the runner. The CLI, the demo and the benchmarks all build their runs here."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from .. import _settings
from ..tor._changes import TorChanges
from ..tor._client import RotatingTorClient
from ..tor._connect import connect_or_launch
from ..tor._endpoint import TorEndpoint
from ..tor._ledger import ExitLedger, PostgresDsn
from ..tor._rotation import AUTO, choose_strategy
from ._batch import BatchOptions, BatchRunner
from ._progress import Reporter
from ._run_log import RunLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientSettings:
    """How the client picks and checks exits; the defaults are the CLI's."""

    cooldown_hours: float = 1.0
    quarantine_hours: float = 6.0
    #: A strategy's name, or ``auto``: pin on a tor we launched, isolate on a shared one.
    rotation: str = AUTO
    ip_check_url: str = _settings.DEFAULT_IP_CHECK_URL
    ca_bundle: str | None = None
    #: Where the exit ledger lives: ``ledger_path`` if given (a SQLite file, or a PostgreSQL
    #: database shared with other machines), else the file in ``state_dir`` (default: the
    #: per-user state directory, which also keeps the record of what runs change in tor).
    state_dir: Path | None = None
    ledger_path: Path | PostgresDsn | None = None

    def ledger(self) -> Path | PostgresDsn:
        return self.ledger_path or _settings.ledger_path(self.state_dir)


@dataclass(frozen=True)
class Launch:
    """Whether a tor of our own may be started when none answers, and the hints that say so."""

    allowed: bool = True
    refused_hint: str = "launching one is not allowed"
    launch_hint: str = ""


@contextmanager
def open_client(
    endpoint: TorEndpoint, settings: ClientSettings = ClientSettings(), *, launch: Launch = Launch()
) -> Iterator[RotatingTorClient]:
    """A client on the tor at ``endpoint``, or on one launched for it; tor is stopped after.

    The ledger is opened first: a ledger that cannot be used fails before any tor is started."""
    with ExitStack() as stack:
        ledger = stack.enter_context(
            ExitLedger(
                settings.ledger(),
                cooldown=timedelta(hours=settings.cooldown_hours),
                quarantine=timedelta(hours=settings.quarantine_hours),
            )
        )
        # A ledger file keeps tor's record beside it; a ledger on a server, the state directory.
        tor_changes = None if ledger.path is not None else TorChanges.default_path(settings.state_dir)
        endpoint, launched = connect_or_launch(
            endpoint, launch=launch.allowed, refused_hint=launch.refused_hint, launch_hint=launch.launch_hint
        )
        if launched is not None:
            stack.enter_context(launched)
        strategy = choose_strategy(settings.rotation, tor_is_ours=launched is not None)
        if settings.rotation == AUTO:
            log.info("rotation: %s (%s)", strategy, "a tor of our own" if launched else "a tor shared with others")
        yield stack.enter_context(
            RotatingTorClient(
                settings.cooldown_hours,
                endpoint=endpoint,
                strategy=strategy,
                ip_check_url=settings.ip_check_url,
                ledger=ledger,
                quarantine_hours=settings.quarantine_hours,
                ca_bundle=settings.ca_bundle,
                tor_changes_path=tor_changes,
            )
        )


@dataclass
class Run:
    """A wired run: the client is connected; ``make_runner`` builds the batch runner once the
    caller knows how to report (after expanding courses, say)."""

    client: RotatingTorClient
    options: BatchOptions
    run_log: RunLog
    runner: BatchRunner | None = field(default=None, init=False)

    def make_runner(self, reporter: Reporter) -> BatchRunner:
        self.runner = BatchRunner(self.client, self.options, reporter=reporter, run_log=self.run_log)
        return self.runner


@contextmanager
def open_run(
    options: BatchOptions,
    *,
    endpoint: TorEndpoint,
    settings: ClientSettings = ClientSettings(),
    launch: Launch = Launch(),
) -> Iterator[Run]:
    """Connect to (or launch) tor, open the client and its ledger, and the output's run log."""
    with open_client(endpoint, settings, launch=launch) as client:
        yield Run(client, options, RunLog(_settings.run_log_path(options.output_dir)))
