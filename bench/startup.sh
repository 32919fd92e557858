#!/usr/bin/env bash
# startup.sh: time from exec of headroomd to its ready file (the catalog
# loaded, every account in memory, listening) with 1M accounts, against a
# full scan of the accounts table by the sqlite3 CLI measured in the same run.
#
#   bench/startup.sh
#   BENCH_ACCOUNTS=200000 BENCH_RUNS=5 bench/startup.sh
#
# Environment:
#   BENCH_ACCOUNTS  accounts in the demo database (default 1000000)
#   BENCH_RUNS      timed starts (default 3); the best and the median are shown
#   BENCH_FRESH=1   regenerate the cached database in bench/out/
#   HEADROOM_BUILD  build directory with headroomd and headroom (default build/)
#
# The database is generated once (`headroom demo-data --users 1`, about 15 s
# for 1M) and cached in bench/out/. Before the timed runs the sqlite3 scan
# runs once unrecorded, so both sides start from a warm page cache. The ready
# file is polled every 5 ms. Goal: <= 3 s. Also written to bench/out/startup.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
ACCOUNTS=${BENCH_ACCOUNTS:-1000000}
RUNS=${BENCH_RUNS:-3}
CONFIG=$ROOT/examples/boards/headroom.yaml
export HEADROOM_SECRET_KEY=${HEADROOM_SECRET_KEY:-sk_bench_0123456789}

. "$ROOT/bench/lib.sh"
command -v sqlite3 >/dev/null || die "sqlite3 is required (apt-get install sqlite3)"
[ -x "$BUILD/headroomd" ] && [ -x "$BUILD/headroom" ] || die "build first: cmake -S . -B build && cmake --build build"

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-startup.XXXXXX")
SRV_PID=
stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
        SRV_PID=
    fi
}
cleanup() { stop_server; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

DB=$OUT/startup-$ACCOUNTS.db
demo_db "$DB" "$ACCOUNTS"

ms_now_f() { date +%s%N; }

# best and median of the numbers given
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%d %d", v[1], m }'; }

SCAN_SQL='select count(*), sum(length(name)) from accounts'
sqlite3 "$DB" "$SCAN_SQL" >/dev/null || die "sqlite3 cannot read $DB"   # warms the page cache

echo "headroomd startup, $ACCOUNTS accounts, $RUNS runs; reference: sqlite3 \"$SCAN_SQL\""
hr_times=() sq_times=() loaded=()
for _ in $(seq 1 "$RUNS"); do
    rm -f "$TMP/ready"
    t0=$(ms_now_f)
    "$BUILD/headroomd" --config "$CONFIG" --db "$DB" --listen 127.0.0.1:0 --durability normal \
        --ready-file "$TMP/ready" >"$TMP/headroomd.log" 2>&1 &
    SRV_PID=$!
    until [ -s "$TMP/ready" ]; do
        kill -0 "$SRV_PID" 2>/dev/null || { cat "$TMP/headroomd.log" >&2; die "headroomd exited during startup"; }
        [ $(( ($(ms_now_f) - t0) / 1000000 )) -lt 120000 ] || die "headroomd not ready after 120 s"
        sleep 0.005
    done
    t1=$(ms_now_f)
    hr_times+=($(( (t1 - t0) / 1000000 )))
    stop_server
    n=$(sed -n 's/.*loaded \([0-9]*\) accounts from .* in \([0-9]*\) ms.*/\1 \2/p' "$TMP/headroomd.log")
    [ -n "$n" ] && loaded+=("${n#* }")
    [ -z "$n" ] || [ "${n% *}" = "$ACCOUNTS" ] || die "headroomd loaded ${n% *} accounts, expected $ACCOUNTS"

    t0=$(ms_now_f)
    sqlite3 "$DB" "$SCAN_SQL" >/dev/null
    t1=$(ms_now_f)
    sq_times+=($(( (t1 - t0) / 1000000 )))
done

read -r hr_best hr_med <<<"$(stats "${hr_times[@]}")"
read -r sq_best sq_med <<<"$(stats "${sq_times[@]}")"
ld="-"
if [ ${#loaded[@]} -gt 0 ]; then read -r ld _ <<<"$(stats "${loaded[@]}")"; fi
awk -v load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" -v hb="$hr_best" -v hm="$hr_med" -v sb="$sq_best" -v sm="$sq_med" -v ld="$ld" -v n="$ACCOUNTS" \
    -v runs="${hr_times[*]}" -v sruns="${sq_times[*]}" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" 'BEGIN {
    printf "\n== startup %s, %d accounts, load %s ==\n", when, n, load
    printf "%-34s %8s %8s   runs (ms)\n", "", "best", "median"
    printf "%-34s %6d ms %5d ms   %s\n", "headroomd exec -> ready file", hb, hm, runs
    printf "%-34s %6s ms %8s   (headroomd log, best)\n", "  of which loading the accounts", ld, ""
    printf "%-34s %6d ms %5d ms   %s\n", "sqlite3 full scan of accounts", sb, sm, sruns
    printf "ratio headroomd/sqlite3 scan: %.1fx (best), %.1fx (median)\n", hb / (sb ? sb : 1), hm / (sm ? sm : 1)
    printf "goal startup <= 3 s with %d accounts: %s (best %d ms, median %d ms)\n", n,
           (hm <= 3000) ? "MET" : "NOT MET", hb, hm
}' | tee "$OUT/startup.txt"
