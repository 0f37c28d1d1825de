#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a bounded time each and fails
# on the first crash, leak or timeout; libFuzzer leaves the input that
# failed under fuzz/artifacts/TARGET/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 20 s, all targets)
#
# The only toolchain is stable: cargo-fuzz's nightly flags (-Zsanitizer)
# are allowed with RUSTC_BOOTSTRAP=1. Inputs found are kept in
# fuzz/corpus/TARGET (ignored by git) next to the committed seeds.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(request_head token_decode authorization_header)
fi
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz build
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzz: $t for ${secs}s"
    cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 -print_funcs=0 \
        2> >(grep -v -e '^#[0-9]' -e '# Uses: ' >&2)
done
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
