#!/usr/bin/env bash
# Instructions and heap allocations per keep-alive request, counted by
# callgrind in ONE worker process: a load-independent figure, for comparing
# the request path of ferricorn's hello with bare hyper's on a busy machine
# (bench/run.sh measures time; this counts work).
#
#   bash bench/callgrind.sh            # hello vs bare hyper, ~1 min
#
# Each server runs under valgrind with one worker; wrk warms it up, the
# counters are zeroed, `wrk -t1 -c8 -d6s` runs, the counters are dumped and
# divided by the requests wrk completed. ferricorn's worker is started
# directly (sockets handed over as its master would, see arbiter/spawn.rs),
# since valgrind cannot follow the master's exec of /proc/self/exe.
# Needs valgrind and wrk (apt-get install valgrind wrk) and release builds
# (cargo build --release --examples -p ferricorn; bench/subjects).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$here/out/callgrind"
mkdir -p "$out"
for tool in valgrind callgrind_control wrk python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

# count NAME PORT PID_PATTERN -- COMMAND...: prints "NAME: N instructions, A allocations per request"
count() {
  local name=$1 port=$2 pattern=$3; shift 4
  "$@" > "$out/$name.log" 2>&1 &
  local launcher=$!
  for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.5; done
  wrk -t1 -c8 -d2s "http://127.0.0.1:$port/" > /dev/null
  local pid
  pid=$(pgrep -f "$pattern" | sort -n | tail -1)
  callgrind_control -z "$pid" > /dev/null
  local requests
  requests=$(wrk -t1 -c8 -d6s "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" > /dev/null
  sleep 1
  local dump
  dump=$(ls -t "$out/$name".out.* | grep -v '\.log$' | head -1)
  python3 - "$dump" "$requests" "$name" <<'PY'
import re, sys
path, requests, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total = allocs = 0
names, callee = {}, None
for line in open(path, errors="replace"):
    if line.startswith(("summary:", "totals:")) and not total:
        total = int(line.split()[1])
    elif line.startswith(("fn=", "cfn=")):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("cfn="):
                callee = names.get(m.group(1), "")
    elif line.startswith("calls=") and callee in ("malloc", "__libc_malloc"):
        allocs += int(line[6:].split()[0])
print(f"{name}: {total / requests:,.0f} instructions, {allocs / requests:.1f} mallocs per request ({requests} requests)")
PY
  kill "$pid" 2>/dev/null || true
  wait "$launcher" 2>/dev/null || true
}

count bare-hyper 18402 "callgrind-out-file=$out/bare-hyper.out" -- \
  valgrind --tool=callgrind --trace-children=yes "--callgrind-out-file=$out/bare-hyper.out.%p" \
  "$here/subjects/target/release/hyper-hello" --bind 127.0.0.1:18402 --workers 1

count ferricorn-hello 18401 "callgrind-out-file=$out/ferricorn-hello.out" -- \
  python3 "$here/callgrind_worker.py" 18401 "$out/ferricorn-hello.out.1" "$root/target/release/examples/hello"
