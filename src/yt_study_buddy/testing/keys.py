"""Relay and authority keys for the lab. Generating them costs about 8 CPU-seconds (RSA-3072
authority identities, one tor per relay), so each set is cached per nickname and reused by the
next lab: a lab is private, and a relay identity shared by two labs on different ports is
harmless. Missing or soon-expiring sets are generated in parallel, then cached."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from platformdirs import user_cache_dir

from . import torrc
from .torrc import Relay

log = logging.getLogger(__name__)

_CERT_MONTHS = 12
_MIN_CERT_LIFE = timedelta(days=30)


def _cache_root() -> Path:
    return Path(user_cache_dir("yt-study-buddy")) / "lab-keys"


def _cache_name(relay: Relay) -> str:
    # An authority certificate names its DirPort, so it is only reused with the same one.
    return f"{relay.nick}-{relay.dir_port}" if relay.role == "authority" else relay.nick


def _usable(entry: Path, relay: Relay) -> bool:
    if not (entry / "fingerprint").is_file() or not (entry / "keys" / "secret_id_key").is_file():
        return False
    if relay.role != "authority":
        return True
    cert = entry / "keys" / "authority_certificate"
    if not cert.is_file():
        return False
    for line in cert.read_text().splitlines():
        if line.startswith("dir-key-expires "):
            expires = datetime.strptime(line.split(" ", 1)[1].strip(), "%Y-%m-%d %H:%M:%S")
            return expires.replace(tzinfo=UTC) - datetime.now(UTC) > _MIN_CERT_LIFE
    return False


def _store(datadir: Path, entry: Path) -> None:
    """Copy fresh keys into the cache atomically; another lab may be storing the same entry."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    shutil.copy2(datadir / "fingerprint", staging / "fingerprint")
    shutil.copytree(datadir / "keys", staging / "keys")
    shutil.rmtree(entry, ignore_errors=True)
    try:
        os.replace(staging, entry)
    except OSError:  # lost a race: the other copy is just as good
        shutil.rmtree(staging, ignore_errors=True)


def _generate(workdir: Path, relays: Sequence[Relay], tor: str, gencert: str, owner_pid: int, deadline: float) -> None:
    jobs: dict[str, subprocess.Popen[str]] = {}
    for relay in relays:
        conf = workdir / relay.nick / "torrc.keygen"
        conf.write_text(torrc.keygen_torrc(workdir, relay, owner_pid))
        # Writes <datadir>/keys/* and <datadir>/fingerprint.
        cmd = [tor, "--list-fingerprint", "-f", str(conf), "--defaults-torrc", str(workdir / "empty"), "--quiet"]
        jobs[relay.nick] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if relay.role == "authority":
            keys = workdir / relay.nick / "keys"
            cmd = [
                gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", str(_CERT_MONTHS),
                "-a", f"{relay.address}:{relay.dir_port}",
                "-i", str(keys / "authority_identity_key"),
                "-s", str(keys / "authority_signing_key"),
                "-c", str(keys / "authority_certificate"),
            ]  # fmt: skip
            # Empty stdin: an unencrypted identity key (gotcha 9).
            jobs[f"{relay.nick} certificate"] = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
    try:
        for name, job in jobs.items():
            out, _ = job.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            if job.returncode != 0:
                raise RuntimeError(f"key generation for {name} failed: {out.strip()}")
    finally:
        for job in jobs.values():
            if job.poll() is None:
                job.kill()
                job.wait()


def prepare_keys(
    workdir: Path, relays: Sequence[Relay], tor: str, gencert: str, owner_pid: int, deadline: float
) -> dict[str, str]:
    """Put every relay's keys into ``<workdir>/<nick>/keys``; return nick -> fingerprint."""
    root = _cache_root()
    missing = []
    for relay in relays:
        entry, datadir = root / _cache_name(relay), workdir / relay.nick
        if _usable(entry, relay):
            shutil.copytree(entry / "keys", datadir / "keys", dirs_exist_ok=True)
            shutil.copy2(entry / "fingerprint", datadir / "fingerprint")
        else:
            missing.append(relay)
    if missing:
        log.info("generating keys for %s", ", ".join(r.nick for r in missing))
        _generate(workdir, missing, tor, gencert, owner_pid, deadline)
        for relay in missing:
            _store(workdir / relay.nick, root / _cache_name(relay))
    # "<nick> <40 hex digits>"
    return {r.nick: (workdir / r.nick / "fingerprint").read_text().split()[1] for r in relays}
