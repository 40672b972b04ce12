"""The README's "Use it as a library" example, run as written against the lab and the fake YouTube.

The code is read from README.md at test time, so the test breaks when the README drifts from the
library. It uses tor's default ports, which the session lab listens on, and cookie auth. Two
things point it at the test world, nothing else: XDG_STATE_HOME puts its exit ledger in a
temporary directory, and one substitution gives its ``RotatingTorClient`` the fake's CA (real
YouTube needs none)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from yt_study_buddy.testing.fake_youtube import FakeYouTube
from yt_study_buddy.testing.network import TorLab

pytestmark = pytest.mark.lab

README = Path(__file__).resolve().parent.parent / "README.md"
CLIENT = "RotatingTorClient(cooldown_hours=1.0)"


def library_example() -> str:
    """The first Python block under the README's "Use it as a library" heading."""
    text = README.read_text()
    section = text.split("## Use it as a library", 1)
    assert len(section) == 2, "README.md has no 'Use it as a library' section"
    block = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert block, "the library section has no ```python block"
    return block.group(1)


def test_the_readme_library_example_fetches_each_video_on_its_own_exit(
    lab: TorLab, fake_youtube: FakeYouTube, tmp_path: Path
) -> None:
    assert (lab.endpoint.socks_port, lab.endpoint.control_port) == (9050, 9051)  # the example's defaults
    code = library_example()
    assert code.count(CLIENT) == 1, f"the example no longer makes its client as {CLIENT}"
    code = code.replace(CLIENT, f"RotatingTorClient(cooldown_hours=1.0, ca_bundle={str(fake_youtube.ca_path)!r})")
    [listed] = re.findall(r"^video_ids = (\[.*\])$", code, re.M)
    video_ids = ast.literal_eval(listed)

    env = {key: value for key, value in os.environ.items() if not key.startswith(("YTSB_", "XDG_"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-3000:]

    expected = [
        f"{fake_youtube.video(vid).title} {len(fake_youtube.video(vid).snippets('en'))} snippets" for vid in video_ids
    ]
    assert done.stdout.splitlines() == expected
    exits = {vid: {entry.client_ip for entry in fake_youtube.served(video_id=vid)} for vid in video_ids}
    assert all(len(seen) == 1 for seen in exits.values()), exits
    used = [seen.pop() for seen in exits.values()]
    assert len(set(used)) == len(video_ids) and set(used) <= set(lab.exit_ips)
    # The ledger went where XDG_STATE_HOME says, not into the user's own state directory.
    assert (tmp_path / "state" / "yt-study-buddy" / "exit-ledger.sqlite3").is_file()
