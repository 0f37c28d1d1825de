#!/usr/bin/env bash
# Creates bench/.venv with the pinned Python subjects (bench/requirements.txt):
# Gunicorn, and Django + DRF + simplejwt for the simplejwt subject of the
# benchmark and the differential test of ferricorn-auth
# (crates/auth/tests/simplejwt_differential.rs). Does nothing when the venv
# already holds exactly these requirements. Used by bench/run.sh and .ci/run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  echo "creating $venv..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
