"""The CLI as a real subprocess, where the process matters: exit codes, stdout/stderr
separation, the environment and PATH, failing clearly without tor. Parsing and usage errors are
tested in-process in tests/test_cli_options.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path

import pytest

VIDEO = "dQw4w9WgXcQ"


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, input: str | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``yt-study-buddy ARGS`` with no ``YTSB_*`` from the caller's environment, plus ``env``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
    return subprocess.run(
        [sys.executable, "-m", "yt_study_buddy", *args],
        env={**clean, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port that refuses connections: bound but not listening, so nothing else can take it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def no_tor_args(port: int, tmp_path: Path) -> list[str]:
    return [
        "--tor-control",
        f"127.0.0.1:{port}",
        "--tor-socks",
        f"127.0.0.1:{port}",
        "--output",
        str(tmp_path / "notes"),
        "--state-dir",
        str(tmp_path / "state"),
    ]


def test_the_command_leaves_unneeded_libraries_unimported() -> None:
    """Start-up pays only for what a fetch needs: no rich without a terminal (the progress bar
    and its log handler import it when they are used), no yt-dlp without a course, no psycopg
    without a PostgreSQL ledger, and no metadata lookup for ``--version`` unless it is asked."""
    probe = (
        "import sys, importlib.metadata as m\n"
        "looked_up = []\n"
        "m.version = lambda name: looked_up.append(name) or '0'\n"
        "import yt_study_buddy.cli\n"
        "print(sorted(n for n in ('rich', 'yt_dlp', 'psycopg') if n in sys.modules), looked_up)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[] []"


def test_version():
    done = run_cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"yt-study-buddy, version {version('yt-study-buddy')}\n",
        "",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Usage:"),
        (("fetch",), "yt-study-buddy: error: no videos given: pass URLs or ids, or --file FILE"),
        (("--format", "pdf", VIDEO), "Invalid value for '--format': 'pdf' is not one of"),
    ],
)
def test_usage_errors_exit_2_before_any_tor_contact(args, message, dead_port):
    done = run_cli(*args, env={"YTSB_TOR_CONTROL": f"127.0.0.1:{dead_port}", "YTSB_NO_LAUNCH_TOR": "1"})
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stdout == "" or done.stdout.startswith("Usage:")  # click prints bare help on stdout


def test_options_come_from_environment_variables(tmp_path, dead_port):
    done = run_cli(
        VIDEO,
        *no_tor_args(dead_port, tmp_path)[2:],
        env={"YTSB_TOR_CONTROL": f"127.0.0.1:{dead_port}", "YTSB_NO_LAUNCH_TOR": "1"},
    )
    assert done.returncode == 1 and f"no tor answers on its control port 127.0.0.1:{dead_port}" in done.stderr


def test_no_tor_and_no_launch_is_one_clear_line(tmp_path, dead_port):
    done = run_cli(VIDEO, "--no-launch-tor", *no_tor_args(dead_port, tmp_path))
    assert done.returncode == 1
    assert done.stderr == (
        f"yt-study-buddy: error: no tor answers on its control port 127.0.0.1:{dead_port}, and --no-launch-tor "
        "forbids starting one: start tor, point --tor-control at it, or drop --no-launch-tor\n"
    )
    assert done.stdout == ""
    assert not list((tmp_path / "notes").iterdir())  # nothing fetched, not even a run log


def test_no_tor_binary_says_how_to_install(tmp_path, dead_port):
    empty = tmp_path / "bin"
    empty.mkdir()  # launching is allowed, but PATH has no tor
    done = run_cli(VIDEO, *no_tor_args(dead_port, tmp_path), env={"PATH": str(empty)})
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "yt-study-buddy: error: no tor binary found: install tor (Debian/Ubuntu: sudo apt install tor; "
        "macOS: brew install tor) or start one and point --tor-control at it"
    )


def test_an_unreachable_postgres_ledger_is_one_line_before_tor_without_the_password(tmp_path, dead_port):
    url = f"postgresql://ytsb:s3cret@/ytsb?host={tmp_path}&connect_timeout=2"  # no server there
    done = run_cli(VIDEO, "--no-launch-tor", *no_tor_args(dead_port, tmp_path), "--ledger", url)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"yt-study-buddy: error: cannot reach exit ledger postgresql://ytsb:[redacted]@/ytsb?host={tmp_path}&"
    )
    assert "s3cret" not in done.stderr and "control port" not in done.stderr  # tor was never asked


def test_the_ledger_is_opened_before_tor_from_its_variable(tmp_path, dead_port):
    """YTSB_LEDGER names the file; it is created (a ledger that works) before tor is asked."""
    ledger = tmp_path / "shared" / "ledger.sqlite3"
    done = run_cli(VIDEO, "--no-launch-tor", *no_tor_args(dead_port, tmp_path), env={"YTSB_LEDGER": str(ledger)})
    assert done.returncode == 1 and "no tor answers on its control port" in done.stderr
    assert ledger.is_file() and not (tmp_path / "state" / "exit-ledger.sqlite3").exists()


def test_a_postgres_ledger_from_its_variable_gets_its_tables(postgres_schema, tmp_path, dead_port):
    import psycopg

    done = run_cli(VIDEO, "--no-launch-tor", *no_tor_args(dead_port, tmp_path), env={"YTSB_LEDGER": postgres_schema})
    assert done.returncode == 1 and "no tor answers on its control port" in done.stderr
    with psycopg.connect(postgres_schema, connect_timeout=10) as conn:
        assert conn.execute("SELECT schema_version FROM ledger_meta").fetchall() == [(1,)]


def test_doctor_against_nothing_prints_the_fix(dead_port):
    done = run_cli("doctor", "--tor-control", f"127.0.0.1:{dead_port}", "--tor-socks", f"127.0.0.1:{dead_port}")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"✗ control port reachable  nothing answers on 127.0.0.1:{dead_port}")
    assert lines[1].startswith(f"    fix: start tor with 'ControlPort {dead_port}'")
    assert len(lines) == 10 and all(line.startswith("- ") for line in lines[2:])
