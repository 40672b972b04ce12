"""Defaults and paths, defined once: every module and the CLI take them from here."""

from __future__ import annotations

from pathlib import Path

import platformdirs

#: The name of the per-user state and cache directories (``platformdirs``).
APP_NAME = "yt-study-buddy"
#: The exit ledger in the state directory, shared by every run of this user on this machine.
LEDGER_FILENAME = "exit-ledger.sqlite3"
#: What runs changed in tor (stream attachment, conflux), kept so ``doctor --fix`` can undo it.
TOR_CHANGES_FILENAME = "tor-changes.sqlite3"
#: The run's own directory inside the output directory: the run log and the video claims.
RUN_DIR_NAME = ".yt-study-buddy"
RUN_LOG_FILENAME = "runs.jsonl"
#: The notes' full-text search index (SQLite FTS5), in the run's directory: derived from the notes.
SEARCH_INDEX_FILENAME = "search.sqlite3"
#: The Tor Project's own echo; any service answering {"IP": ...} or {"ip": ...} or a bare IP works.
DEFAULT_IP_CHECK_URL = "https://check.torproject.org/api/ip"
DEFAULT_TOR_HOST = "127.0.0.1"
DEFAULT_SOCKS_PORT = 9050
DEFAULT_CONTROL_PORT = 9051


def state_dir() -> Path:
    """The per-user state directory: the exit ledger and the record of changes made to tor."""
    return platformdirs.user_state_path(APP_NAME)


def cache_dir() -> Path:
    """The per-user cache directory: a launched tor's data, merged CA bundles."""
    return platformdirs.user_cache_path(APP_NAME)


def ledger_path(state: Path | None = None) -> Path:
    return (state or state_dir()) / LEDGER_FILENAME


def run_log_path(output_dir: Path) -> Path:
    """The run log of the notes in ``output_dir``; its claims live beside it."""
    return output_dir / RUN_DIR_NAME / RUN_LOG_FILENAME


def search_index_path(output_dir: Path) -> Path:
    """The search index of the notes in ``output_dir``: hidden, beside the run log."""
    return output_dir / RUN_DIR_NAME / SEARCH_INDEX_FILENAME
