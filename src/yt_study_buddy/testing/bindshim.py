"""Builds the LD_PRELOAD bind shim (bindshim.c) once per source version, with gcc."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from platformdirs import user_cache_dir

log = logging.getLogger(__name__)


def _source() -> bytes:
    return resources.files(__package__).joinpath("bindshim.c").read_bytes()


class ShimBuild:
    """gcc running in the background, or nothing when the cache already holds this version."""

    def __init__(self) -> None:
        source = _source()
        digest = hashlib.sha256(source).hexdigest()[:16]
        self.target = Path(user_cache_dir("yt-study-buddy")) / f"bindshim-{digest}.so"
        self._proc: subprocess.Popen[bytes] | None = None
        if self.target.exists():
            return
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise RuntimeError("the lab needs gcc to build its bind shim: apt-get install gcc")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="bindshim-", dir=self.target.parent))
        (self._dir / "bindshim.c").write_bytes(source)
        cmd = [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", "bindshim.so", "bindshim.c", "-ldl"]
        self._proc = subprocess.Popen(cmd, cwd=self._dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self, timeout: float) -> Path:
        """The shared object's path, once built; moved into the cache atomically (labs may race)."""
        if self._proc is None:
            return self.target
        try:
            output, _ = self._proc.communicate(timeout=timeout)
            if self._proc.returncode != 0:
                raise RuntimeError(f"gcc could not build the bind shim: {output.decode(errors='replace')}")
            os.replace(self._dir / "bindshim.so", self.target)
            log.debug("built bind shim %s", self.target)
        finally:
            self.abandon()
        return self.target

    def abandon(self) -> None:
        """Stop gcc if it still runs and remove its scratch directory."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
