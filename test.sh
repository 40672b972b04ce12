#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian/Ubuntu machine: installs what the tests need
# (tor, gcc, unshare, ip, PostgreSQL; a virtualenv with the package), starts a throwaway
# PostgreSQL cluster (unix socket only) for the ledger tests, then runs pytest inside a
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
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[ -n "$(pg_bin)" ] || missing+=(postgresql)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: please install: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  # Installing tor must not start a system tor on the public network, nor PostgreSQL a system
  # cluster: forbid service starts.
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
# A throwaway PostgreSQL cluster for the ledger tests: its own directory, a unix socket there
# and no TCP, fsync off; stopped and removed when this script exits, however it exits. The
# socket is a file, so the tests reach it from inside the jail's network namespace.
# In /tmp itself: the postgres user must reach it, and a socket's path must stay short.
pg_dir=$(mktemp -d /tmp/ytsb-test-pg.XXXXXX)
pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pg_dir"
  pg() { runuser -u postgres -- "$@"; }  # initdb and postgres refuse to run as root
fi
stop_postgres() {
  if [ -f "$pg_dir/data/postmaster.pid" ]; then
    pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m immediate -s stop >/dev/null 2>&1 || true
  fi
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg "$(pg_bin)/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1 ||
  { cat "$pg_dir/initdb.log" >&2; exit 1; }
# One role logs in with a password (so a wrong one is refused); everyone else is trusted.
printf 'local all ytsb_password scram-sha-256\nlocal all all trust\n' >"$pg_dir/data/pg_hba.conf"
pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -s \
  -o "-c listen_addresses='' -c unix_socket_directories='$pg_dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start || { cat "$pg_dir/postgres.log" >&2; exit 1; }
export YTSB_TEST_POSTGRES="postgresql:///postgres?host=$pg_dir&user=postgres"

# Lab tests mostly wait on tor and the network: two pytest workers (pytest-xdist), each in a
# loopback-only namespace of its own, so each has its own lab on the same ports. A test file
# stays on one worker. YTSB_TEST_WORKERS=1 runs them in one.
workers=${YTSB_TEST_WORKERS:-2}
worker_python=".venv/bin/python -m yt_study_buddy.testing jail --fresh -- .venv/bin/python"
status=0
.venv/bin/python -m yt_study_buddy.testing jail -- .venv/bin/python -m pytest \
  --tx "$workers*popen//python=$worker_python" --dist loadfile "$@" || status=$?
exit "$status"
