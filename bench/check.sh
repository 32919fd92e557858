#!/usr/bin/env bash
# check.sh: POST /v1/check throughput and latency of headroomd, against a
# private nginx returning a fixed 100-byte JSON as the reference measured in
# the same run, on the same core, with the same client and the same requests.
#
#   bench/check.sh                      # 3 rounds of 10 s per server (~90 s)
#   BENCH_SECONDS=30 bench/check.sh
#
# Layout: the server under test (headroomd --threads 1, then nginx with one
# worker) runs alone on core 0; wrk runs on core 1 (-t1 -c64). The servers
# are measured one after the other, never both at once, alternating over a
# few rounds so that a noisy neighbour hits both alike. headroomd gets
# POST /v1/check for random accounts and features (bench/check.lua, a pool
# of pre-formatted requests); nginx gets POSTs of the same shape (method,
# path, headers, body size) as one static wrk request (BENCH_STATIC=1), the
# cheapest client there is, so that the reference is not client-bound; it
# discards the body. Each round shows how busy the server core was (by
# anything: the VM is shared) and wrk's CPU use, with a warning when wrk is
# saturated while the server core is not.
#
# Environment:
#   BENCH_SECONDS   seconds of measurement per server (default 10)
#   BENCH_WARMUP    seconds of unrecorded warm-up per server (default 2)
#   BENCH_ROUNDS    rounds, each headroomd then nginx (default 3); medians are
#                   reported, the ratio is the median of the per-round ratios
#   BENCH_CONNS     wrk connections (default 64)
#   BENCH_ACCOUNTS  accounts in the demo database (default 100000)
#   BENCH_FRESH=1   regenerate the cached database in bench/out/
#   HEADROOM_BUILD  build directory with headroomd and headroom (default build/)
#   SERVER_CPU / CLIENT_CPU  cores for the server and wrk (default 0 and 1)
#
# Prints the figures, the ratio headroomd/nginx and the goals (>= 0.6x of
# nginx's req/s, p99 <= 2 ms at 64 connections); also written to
# bench/out/check.txt. Exits 1 when a step fails (not when a goal is missed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
SECONDS_=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-64}
ACCOUNTS=${BENCH_ACCOUNTS:-100000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONFIG=$ROOT/examples/boards/headroom.yaml
export HEADROOM_SECRET_KEY=${HEADROOM_SECRET_KEY:-sk_bench_0123456789}
export BENCH_ACCOUNTS=$ACCOUNTS

. "$ROOT/bench/lib.sh"
for t in wrk nginx curl taskset; do
    command -v "$t" >/dev/null || die "$t is required (apt-get install wrk nginx-light curl util-linux)"
done
[ -x "$BUILD/headroomd" ] && [ -x "$BUILD/headroom" ] || die "build first: cmake -S . -B build && cmake --build build"
[ "$(nproc)" -ge 2 ] || echo "check.sh: warning: fewer than 2 cores; server and client will share one" >&2

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-check.XXXXXX")
SRV_PID='' WRK_PID=''
cleanup() {
    stop_pid WRK_PID
    stop_pid SRV_PID
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the database (cached) ---------------------------------------------------
DB=$OUT/check-$ACCOUNTS.db
demo_db "$DB" "$ACCOUNTS"

# ---- helpers -----------------------------------------------------------------
# measure NAME URL: warm-up, then the timed run; sets RPS, P99 (ms), CLIENT_PCT.
measure() {
    if [ "$WARMUP" -gt 0 ]; then run_wrk "$ROOT/bench/check.lua" "$2" "$WARMUP" "$TMP/$1-warmup.txt"; fi
    run_wrk "$ROOT/bench/check.lua" "$2" "$SECONDS_" "$OUT/check-wrk-$1.txt"
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/check-wrk-$1.txt")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$OUT/check-wrk-$1.txt")")
    [ -n "$RPS" ] && [ -n "$P99" ] || { cat "$OUT/check-wrk-$1.txt" >&2; die "cannot parse wrk output"; }
    local errs
    errs=$(grep "Socket errors" "$OUT/check-wrk-$1.txt" || true)
    [ -z "$errs" ] || echo "  $1: $errs" >&2
    if [ "$CLIENT_PCT" -ge 90 ] && [ "$SERVER_PCT" -lt 95 ]; then
        echo "  warning: wrk used ${CLIENT_PCT}% of its core and the server core was ${SERVER_PCT}% busy:" \
             "the $1 figure is limited by the client" >&2
    fi
}



# ---- the servers --------------------------------------------------------------
start_headroomd() { # sets SRV_PID and URL
    rm -f "$TMP/ready"
    taskset -c "$SERVER_CPU" "$BUILD/headroomd" --config "$CONFIG" --db "$DB" \
        --listen 127.0.0.1:0 --threads 1 --durability normal --log-level warn \
        --ready-file "$TMP/ready" >"$TMP/headroomd.log" 2>&1 &
    SRV_PID=$!
    wait_file "$TMP/ready" "$SRV_PID" || { cat "$TMP/headroomd.log" >&2; die "headroomd did not start"; }
    URL=$(head -n1 "$TMP/ready")
    local code
    code=$(curl -sS -o "$TMP/sample.json" -w '%{http_code}' -X POST "$URL/v1/check" \
        -H "Authorization: Bearer $HEADROOM_SECRET_KEY" -H 'Content-Type: application/json' \
        -d '{"account":"acct_000042","feature":"boards"}') || die "curl to headroomd failed"
    if [ "$code" != 200 ] || ! grep -q '"allowed"' "$TMP/sample.json"; then
        cat "$TMP/sample.json" >&2; echo >&2
        die "sample POST /v1/check returned HTTP $code without \"allowed\" (wrong key or database?)"
    fi
}

# 100 bytes of JSON, shaped like a check answer.
BODY='{"allowed":true,"reason":"ok","account":"acct_000042","feature":"boards","usage":3,"limit":23,"r":1}'
[ ${#BODY} -eq 100 ] || die "reference body is ${#BODY} bytes, not 100"
start_nginx_ref() { # sets SRV_PID and URL; its answer is checked once
    start_nginx SRV_PID "$BODY" taskset -c "$SERVER_CPU"
    URL=$NGINX_URL
    local got
    got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' -X POST "$URL/v1/check" \
        -H 'Content-Type: application/json' -d '{"account":"acct_000042","feature":"boards"}')
    [ "$got" = "200 100" ] || die "nginx reference answered '$got', expected '200 100'"
}

# ---- rounds: headroomd then nginx, each alone on the server core ---------------
echo "headroomd: POST /v1/check, $ACCOUNTS accounts, --threads 1 on cpu $SERVER_CPU"
echo "nginx:     return 200 with a 100-byte JSON, 1 worker on cpu $SERVER_CPU; requests of the same shape (static)"
echo "client:    wrk -t1 -c$CONNS on cpu $CLIENT_CPU; $ROUNDS round(s) of ${WARMUP}s warm-up + ${SECONDS_}s per server"
: >"$TMP/rounds"
for r in $(seq 1 "$ROUNDS"); do
    start_headroomd
    measure headroomd "$URL"
    cp "$OUT/check-wrk-headroomd.txt" "$OUT/check-wrk-headroomd-$r.txt"
    hr_rps=$RPS hr_p99=$P99 hr_cli=$CLIENT_PCT hr_srv=$SERVER_PCT
    stop_pid SRV_PID
    start_nginx_ref
    BENCH_STATIC=1 measure nginx "$URL"
    cp "$OUT/check-wrk-nginx.txt" "$OUT/check-wrk-nginx-$r.txt"
    stop_pid SRV_PID
    echo "$r $hr_rps $hr_p99 $RPS $P99" >>"$TMP/rounds"
    printf '  round %d: headroomd %6.0f req/s p99 %5.2f ms (cpu %3d%%, wrk %3d%%) | nginx %6.0f req/s p99 %5.2f ms (cpu %3d%%, wrk %3d%%)\n' \
        "$r" "$hr_rps" "$hr_p99" "$hr_srv" "$hr_cli" "$RPS" "$P99" "$SERVER_PCT" "$CLIENT_PCT"
done

# ---- report: medians over the rounds; the ratio is the median of each round's ratio
awk -v load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" -v c="$CONNS" -v s="$SECONDS_" -v n="$ACCOUNTS" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
function median(a, k,   i, j, t) {
    for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
{ k++; hr[k] = $2; hp[k] = $3; ng[k] = $4; np[k] = $5; rr[k] = $2 / $4 }
END {
    r = median(rr, k); h = median(hr, k); hpm = median(hp, k); g = median(ng, k); npm = median(np, k)
    printf "\n== check (HTTP) %s, %d accounts, %d connections, %d x %d s (medians), load %s ==\n", when, n, c, k, s, load
    printf "%-10s %12s %10s\n", "", "req/s", "p99 (ms)"
    printf "%-10s %12.0f %10.2f\n", "headroomd", h, hpm
    printf "%-10s %12.0f %10.2f\n", "nginx", g, npm
    printf "ratio headroomd/nginx: %.2fx req/s, %.1fx p99\n", r, hpm / npm
    printf "goal req/s >= 0.6x nginx: %s (%.2fx)\n", (r >= 0.6) ? "MET" : "NOT MET", r
    printf "goal p99 <= 2 ms at %d connections: %s (%.2f ms; nginx %.2f ms)\n", c,
           (hpm <= 2) ? "MET" : "NOT MET", hpm, npm
}' "$TMP/rounds" | tee "$OUT/check.txt"
