#!/usr/bin/env bash
# run-all.sh: the benchmarks, one after the other.
#
#   bench/run-all.sh            # about 5 minutes once the databases are cached
#
# Builds first (cmake) only when a binary is missing, or with BENCH_BUILD=1.
# Each part's summary goes to bench/out/{check,check_inproc,startup,ingest}.txt and
# the whole output to bench/out/run-all.txt. Environment: see each script
# (BENCH_SECONDS, BENCH_ROUNDS, BENCH_ACCOUNTS is per script so it is not
# passed on here; HEADROOM_BUILD selects the build directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
mkdir -p "$OUT"
unset BENCH_ACCOUNTS   # each benchmark has its own default population

if [ "${BENCH_BUILD:-0}" = 1 ] || [ ! -x "$BUILD/headroomd" ] || [ ! -x "$BUILD/headroom" ] ||
   [ ! -x "$BUILD/bench/bench_check_inproc" ] || [ ! -x "$BUILD/bench/bench_ingest_ref" ] ||
   [ ! -x "$BUILD/bench/bench_ingest_load" ]; then
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target headroomd headroom_cli bench_check_inproc \
        bench_ingest_ref bench_ingest_load
fi

{
    echo "# headroom benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -srm)"
    echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
         "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')"
    echo
    echo "### 1/4 bench/check.sh"
    "$ROOT/bench/check.sh"
    echo
    echo "### 2/4 build/bench/bench_check_inproc (pinned to cpu ${CLIENT_CPU:-1})"
    pin=()
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin=(taskset -c "${CLIENT_CPU:-1}"); fi
    "${pin[@]}" "$BUILD/bench/bench_check_inproc" "$ROOT/examples/boards/headroom.yaml" |
        tee "$OUT/check_inproc.txt"
    echo
    echo "### 3/4 bench/startup.sh"
    "$ROOT/bench/startup.sh"
    echo
    echo "### 4/4 bench/ingest.sh"
    "$ROOT/bench/ingest.sh"
} 2>&1 | tee "$OUT/run-all.txt"
