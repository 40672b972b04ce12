#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian/Ubuntu machine: installs what the tests need
# (tor, gcc, unshare, ip; a virtualenv with the package), then runs pytest inside a
# loopback-only network namespace, where the private Tor network of the lab tests lives.
# Arguments go to pytest, e.g. ./test.sh -k ledger -x
set -euo pipefail
cd "$(dirname "$0")"

missing=()
# tor-gencert comes with the tor package; `tor` alone may be a guard script in front of it.
command -v tor-gencert >/dev/null 2>&1 || missing+=(tor)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: please install: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  # Installing tor must not start a system tor on the public network: forbid service starts.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null 2>&1; then systemctl mask --now tor.service >/dev/null 2>&1 || true; fi
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Lint and types first: seconds, and a failure names the line.
.venv/bin/ruff check --quiet src tests benchmarks
.venv/bin/ruff format --check --quiet src tests benchmarks
.venv/bin/mypy

# Recorded YouTube answers (youtube-transcript-api's sdist test assets) need PyPI: fetch before the jail.
.venv/bin/python -m yt_study_buddy.testing.recordings fetch >/dev/null || true
exec .venv/bin/python -m yt_study_buddy.testing jail -- .venv/bin/python -m pytest "$@"
