#!/usr/bin/env bash
# Sets up yt-study-buddy in a virtualenv on first use, then runs it with your arguments:
#   ./run.sh --parallel --workers 3 --file urls.txt
#   ./run.sh demo        # the whole thing offline, on a private Tor network (needs tor and gcc)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/yt-study-buddy" ]; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here[lab]"
fi
exec "$here/.venv/bin/yt-study-buddy" "$@"
