#!/usr/bin/env bash
# Installs the system tools the tests and benchmarks use, when missing.
# --ci: what the test suite needs (nginx, python3 with venv, PostgreSQL's
# server binaries: the tests initdb clusters of their own, promtool, h2load);
# --bench: also wrk.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
# bench/python-env.sh builds bench/.venv (the simplejwt differential test
# and the benchmark's Python subjects need it).
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# promtool checks the metrics exposition (tests/it/metrics.rs).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# h2load drives HTTP/2 (the TLS/HTTP/2 tests, and the benchmark's tls-h2).
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
# initdb is not on PATH on Debian; pg_config may be absent without libpq-dev.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || need+=(postgresql)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
