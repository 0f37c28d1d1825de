#!/usr/bin/env bash
# ferricorn's side-by-side benchmark, one command (issue 8):
#
#   bash bench/run.sh            # full run: 3 interleaved rounds, ~15 min on 2 cores
#   bash bench/run.sh --smoke    # ~1 s per subject and scenario; CI runs this
#   bash bench/run.sh --help     # rounds, duration, wrk settings, subject filter
#   bash bench/run.sh --scenarios pg-refresh pg-obtain pg-hosts   # PostgreSQL only (issue 13)
#   bash bench/run.sh --scenarios safer-refresh safer-hello       # reuse detection, access revocation (issue 15)
#
# Builds the release binaries (root workspace and bench/subjects), installs
# wrk when missing, creates bench/.venv with the pinned Python subjects
# (bench/python-env.sh, from bench/requirements.txt), then hands over to
# bench/run.py, which starts each subject on 127.0.0.1, drives it with wrk
# and prints the table.
# The PostgreSQL scenarios start a throwaway cluster of their own (bench/pg.py,
# server binaries from install-tools.sh) and an Nginx (bench/nginx.py).
# Set BENCH_SKIP_BUILD=1 to reuse binaries already built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

case " $* " in *" --help "*|*" -h "*) exec python3 "$here/run.py" --help ;; esac

bash "$here/install-tools.sh" --bench

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "building release binaries..." >&2
  (cd "$root" && cargo build --release --quiet --bins --examples -p ferricorn -p ferricorn-auth)
  # A separate Cargo project with its own [workspace] and target dir, so
  # actix-web never enters the root workspace.
  (cd "$here/subjects" && cargo build --release --quiet)
fi

bash "$here/python-env.sh"

exec "$here/.venv/bin/python" "$here/run.py" "$@"
