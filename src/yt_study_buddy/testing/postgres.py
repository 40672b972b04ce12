"""A throwaway PostgreSQL cluster (unix socket only, fsync off) to stop and start at will: the
ledger's and the distributed runs' restart tests, and the distributed benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Seconds for initdb, pg_ctl start and stop.
TOOL_TIMEOUT = 60


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL's binaries, if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent.name.zfill(4))
    return found[-1].parent if found else None


class PostgresCluster:
    """A cluster in ``root`` (short: a socket's path must be); ``dsn`` reaches it as postgres."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.dsn = f"postgresql:///postgres?host={root}&user=postgres&connect_timeout=5"

    def run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=TOOL_TIMEOUT)

    def start(self) -> None:
        options = f"-c listen_addresses='' -c unix_socket_directories={self.root} -c fsync=off"
        self.run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-s", "-o", options, "start"
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "-s", "stop")


@contextmanager
def postgres_cluster(bindir: Path) -> Iterator[PostgresCluster]:
    """A fresh cluster, started; stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="ytsb-own-pg.", dir="/tmp"))  # short: a socket path
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    cluster = PostgresCluster(bindir, root)
    try:
        cluster.run("initdb", "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "--no-sync")
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(root, ignore_errors=True)
