#!/usr/bin/env bash
# check.sh: POST /v1/check throughput and latency of headroomd, against a
# private nginx returning a fixed 100-byte JSON as the reference measured in
# the same run, on the same core, with the same client and the same requests.
#
#   bench/check.sh                      # 10 s per server
#   BENCH_SECONDS=30 bench/check.sh
#
# Layout: the server under test (headroomd --threads 1, then nginx with one
# worker) runs alone on core 0; wrk runs on core 1 (-t1 -c64). The servers
# are measured one after the other, never both at once.
#
# Environment:
#   BENCH_SECONDS   seconds of measurement per server (default 10)
#   BENCH_WARMUP    seconds of unrecorded warm-up per server (default 2)
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
CONNS=${BENCH_CONNS:-64}
ACCOUNTS=${BENCH_ACCOUNTS:-100000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONFIG=$ROOT/examples/boards/headroom.yaml
export HEADROOM_SECRET_KEY=${HEADROOM_SECRET_KEY:-sk_bench_0123456789}
export BENCH_ACCOUNTS=$ACCOUNTS

die() { echo "check.sh: $*" >&2; exit 1; }
for t in wrk nginx curl taskset; do
    command -v "$t" >/dev/null || die "$t is required (apt-get install wrk nginx-light curl util-linux)"
done
[ -x "$BUILD/headroomd" ] && [ -x "$BUILD/headroom" ] || die "build first: cmake -S . -B build && cmake --build build"
[ "$(nproc)" -ge 2 ] || echo "check.sh: warning: fewer than 2 cores; server and client will share one" >&2

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-check.XXXXXX")
SRV_PID=
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    SRV_PID=
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the database (cached) ---------------------------------------------------
DB=$OUT/check-$ACCOUNTS.db
if [ "${BENCH_FRESH:-0}" = 1 ] || [ ! -f "$DB.ok" ]; then
    rm -f "$DB" "$DB-wal" "$DB-shm" "$DB.ok"
    echo "generating $ACCOUNTS accounts into $DB ..."
    "$BUILD/headroom" demo-data --accounts "$ACCOUNTS" --users 1 --db "$DB" --config "$CONFIG" >/dev/null ||
        die "headroom demo-data failed"
    touch "$DB.ok"
fi

# ---- helpers -----------------------------------------------------------------
# wrk's latency figure ("1.23ms", "850.00us", "1.02s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# run_wrk URL SECONDS LOGFILE: runs wrk on the client core; fails on errors.
run_wrk() {
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$2"s --latency -s "$ROOT/bench/check.lua" "$1" >"$3" 2>&1 ||
        { cat "$3" >&2; die "wrk failed"; }
    if grep -q "Non-2xx" "$3"; then
        cat "$3" >&2
        die "wrk saw non-2xx responses from $1"
    fi
}

# measure NAME URL: warm-up, then the timed run; sets RPS and P99 (ms).
measure() {
    if [ "$WARMUP" -gt 0 ]; then run_wrk "$2" "$WARMUP" "$TMP/$1-warmup.txt"; fi
    run_wrk "$2" "$SECONDS_" "$OUT/check-wrk-$1.txt"
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/check-wrk-$1.txt")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$OUT/check-wrk-$1.txt")")
    [ -n "$RPS" ] && [ -n "$P99" ] || { cat "$OUT/check-wrk-$1.txt" >&2; die "cannot parse wrk output"; }
    local errs
    errs=$(grep "Socket errors" "$OUT/check-wrk-$1.txt" || true)
    [ -z "$errs" ] || echo "  $1: $errs" >&2
}

stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
        SRV_PID=
    fi
}

wait_file() { # wait_file PATH PID: until PATH exists, the process dies or 60 s pass
    for _ in $(seq 1 1200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---- headroomd ---------------------------------------------------------------
taskset -c "$SERVER_CPU" "$BUILD/headroomd" --config "$CONFIG" --db "$DB" \
    --listen 127.0.0.1:0 --threads 1 --durability normal --log-level warn \
    --ready-file "$TMP/ready" >"$TMP/headroomd.log" 2>&1 &
SRV_PID=$!
wait_file "$TMP/ready" "$SRV_PID" || { cat "$TMP/headroomd.log" >&2; die "headroomd did not start"; }
HR_URL=$(head -n1 "$TMP/ready")

sample=$(curl -sS -o "$TMP/sample.json" -w '%{http_code}' -X POST "$HR_URL/v1/check" \
    -H "Authorization: Bearer $HEADROOM_SECRET_KEY" -H 'Content-Type: application/json' \
    -d '{"account":"acct_000042","feature":"boards"}') || die "curl to headroomd failed"
if [ "$sample" != 200 ] || ! grep -q '"allowed"' "$TMP/sample.json"; then
    cat "$TMP/sample.json" >&2; echo >&2
    die "sample POST /v1/check returned HTTP $sample without \"allowed\" (wrong key or database?)"
fi

echo "headroomd: POST /v1/check, $ACCOUNTS accounts, --threads 1 on cpu $SERVER_CPU;" \
     "wrk -t1 -c$CONNS on cpu $CLIENT_CPU, ${WARMUP}s warm-up + ${SECONDS_}s"
measure headroomd "$HR_URL"
HR_RPS=$RPS HR_P99=$P99
stop_server

# ---- nginx (the reference) ---------------------------------------------------
# 100 bytes of JSON, shaped like a check answer.
BODY='{"allowed":true,"reason":"ok","account":"acct_000042","feature":"boards","usage":3,"limit":23,"r":1}'
[ ${#BODY} -eq 100 ] || die "reference body is ${#BODY} bytes, not 100"
mkdir -p "$TMP/nginx/logs"
NG_PORT=
for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue   # in use
    cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 '$BODY'; }
    }
}
EOF
    taskset -c "$SERVER_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" \
        >"$TMP/nginx.log" 2>&1 &
    SRV_PID=$!
    ok=
    for _ in $(seq 1 100); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then ok=1; break; fi
        sleep 0.05
    done
    if [ -n "$ok" ]; then NG_PORT=$port; break; fi
    stop_server   # most likely lost a race for the port: try another
done
[ -n "$NG_PORT" ] || { cat "$TMP/nginx.log" "$TMP/nginx/logs/error.log" >&2 2>/dev/null; die "nginx did not start"; }
NG_URL=http://127.0.0.1:$NG_PORT
ng=$(curl -sS -o "$TMP/ng.json" -w '%{http_code} %{size_download}' -X POST "$NG_URL/v1/check" \
    -H 'Content-Type: application/json' -d '{"account":"acct_000042","feature":"boards"}')
[ "$ng" = "200 100" ] || die "nginx reference answered '$ng', expected '200 100'"

echo "nginx:     return 200 (100-byte JSON), 1 worker on cpu $SERVER_CPU; same wrk, same requests"
measure nginx "$NG_URL"
NG_RPS=$RPS NG_P99=$P99
stop_server

# ---- report ------------------------------------------------------------------
awk -v hr="$HR_RPS" -v hp="$HR_P99" -v ng="$NG_RPS" -v np="$NG_P99" -v c="$CONNS" \
    -v s="$SECONDS_" -v n="$ACCOUNTS" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" 'BEGIN {
    r = hr / ng
    printf "\n== check (HTTP) %s, %d accounts, %d connections, %d s ==\n", when, n, c, s
    printf "%-10s %12s %10s\n", "", "req/s", "p99 (ms)"
    printf "%-10s %12.0f %10.2f\n", "headroomd", hr, hp
    printf "%-10s %12.0f %10.2f\n", "nginx", ng, np
    printf "ratio headroomd/nginx: %.2fx req/s, %.1fx p99\n", r, hp / np
    printf "goal req/s >= 0.6x nginx: %s (%.2fx)\n", (r >= 0.6) ? "MET" : "NOT MET", r
    printf "goal p99 <= 2 ms at %d connections: %s (%.2f ms)\n", c, (hp <= 2) ? "MET" : "NOT MET", hp
}' | tee "$OUT/check.txt"
