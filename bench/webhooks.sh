#!/usr/bin/env bash
# webhooks.sh: webhook delivery throughput of the webhook module
# (src/webhooks) to a local receiver: signed POSTs over kept-alive
# connections, every attempt recorded in the outbox and the delivery log.
#
#   bench/webhooks.sh                        # 3 rounds of 50,000 webhooks (~1 min)
#   BENCH_WEBHOOKS=200000 bench/webhooks.sh
#
# Each round: a fresh database with BENCH_WEBHOOKS pending outbox rows (two
# whsec_ secrets each, so two signatures per request, ~250-byte JSON
# bodies) made by build/bench/bench_webhook_load --insert-only (not timed);
# then bench_webhook_load runs the delivery thread (hr_webhooks_new/start,
# concurrency BENCH_CONCURRENCY) pinned to CLIENT_CPU until no row is
# pending, and reports deliveries/s over that whole time (the last outcomes
# committed included). The receiver answers 200 to every POST: a private
# nginx (one worker, `return 200`) on SERVER_CPU when nginx is installed
# (scripts/bootstrap.sh --bench), else the node receiver of the integration
# test (tests/integration/helpers/receiver.mjs). After each round the
# database must hold BENCH_WEBHOOKS delivered rows and as many delivery log
# lines, or the script fails.
#
# Environment:
#   BENCH_WEBHOOKS     rows per round (50000)
#   BENCH_ROUNDS       rounds (3); the median is reported
#   BENCH_CONCURRENCY  requests in flight (64, the module's default)
#   BENCH_DURABILITY   normal (default) or full (fsync every commit)
#   BENCH_RECEIVER     nginx, node or auto (default: nginx when installed)
#   HEADROOM_BUILD     build directory (default build/)
#   SERVER_CPU / CLIENT_CPU  cores for the receiver and the driver (0 and 1)
#
# Goal (the webhooks issue): >= 2,000 deliveries/s. Prints the figures and
# the goal, also written to bench/out/webhooks.txt. Exits 1 when a step
# fails (not when the goal is missed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
N=${BENCH_WEBHOOKS:-50000}
ROUNDS=${BENCH_ROUNDS:-3}
CONC=${BENCH_CONCURRENCY:-64}
DURABILITY=${BENCH_DURABILITY:-normal}
RECEIVER=${BENCH_RECEIVER:-auto}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
GOAL=2000
DRIVER=$BUILD/bench/bench_webhook_load

. "$ROOT/bench/lib.sh"
[ -x "$DRIVER" ] || die "build first: cmake --build build --target bench_webhook_load"
command -v sqlite3 >/dev/null || die "sqlite3 is required (apt-get install sqlite3)"
case "$DURABILITY" in normal) DFLAG=() ;; full) DFLAG=(--durable-full) ;; *) die "BENCH_DURABILITY: normal or full" ;; esac
if [ "$RECEIVER" = auto ]; then
    RECEIVER=node
    command -v nginx >/dev/null && RECEIVER=nginx
fi
case "$RECEIVER" in
    nginx) command -v nginx >/dev/null || die "nginx is not installed (scripts/bootstrap.sh --bench)" ;;
    node) command -v node >/dev/null || die "node is required" ;;
    *) die "BENCH_RECEIVER: nginx, node or auto" ;;
esac
PIN_S=() PIN_C=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_S=(taskset -c "$SERVER_CPU") PIN_C=(taskset -c "$CLIENT_CPU")
fi

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-webhooks.XXXXXX")
RX_PID=''
cleanup() {
    stop_pid RX_PID
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

receiver_nginx() { # sets RX_PID and URL
    start_nginx RX_PID ok "${PIN_S[@]}"
    URL=$NGINX_URL/hooks
}

receiver_node() { # sets RX_PID and URL
    "${PIN_S[@]}" node "$ROOT/tests/integration/helpers/receiver.mjs" "$TMP/port" >"$TMP/rx.out" 2>&1 &
    RX_PID=$!
    wait_file "$TMP/port" "$RX_PID" || { cat "$TMP/rx.out" >&2; die "the node receiver did not start"; }
    URL=http://127.0.0.1:$(head -n1 "$TMP/port")/hooks
}

"receiver_$RECEIVER"
SECRETS="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_$(printf 'the second secret, rotated in' | base64 -w0)"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
{
    echo "webhooks: $N webhooks a round, $ROUNDS round(s), concurrency $CONC, durability $DURABILITY"
    echo "receiver: $RECEIVER answering 200${PIN_S[*]:+ on cpu $SERVER_CPU}; driver: bench_webhook_load${PIN_C[*]:+ on cpu $CLIENT_CPU}; load average before: $LOAD"
} | tee "$TMP/report"

: >"$TMP/rates"
for r in $(seq 1 "$ROUNDS"); do
    DB=$TMP/round$r.db
    "$DRIVER" --db "$DB" --insert "$N" --url "$URL" --secrets "$SECRETS" --insert-only >/dev/null ||
        die "inserting the outbox rows failed"
    "${PIN_C[@]}" "$DRIVER" --db "$DB" --concurrency "$CONC" --max-attempts 3 --initial-ms 1000 \
        --max-seconds 300 "${DFLAG[@]}" >"$TMP/run.json" 2>"$TMP/run.err" ||
        { cat "$TMP/run.json" "$TMP/run.err" >&2; die "round $r: delivery did not finish"; }
    json=$(tail -n1 "$TMP/run.json")
    rate=$(sed -E 's/.*"per_second":([0-9.]+).*/\1/' <<<"$json")
    secs=$(sed -E 's/.*"seconds":([0-9.]+).*/\1/' <<<"$json")
    got=$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM outbox WHERE status = 1) || ' ' || (SELECT count(*) FROM deliveries WHERE code = 200)")
    [ "$got" = "$N $N" ] || die "round $r: expected $N delivered rows and log lines, found '$got' ($json)"
    printf '  round %d: %6d deliveries/s (%s s for %d, all delivered and logged)\n' "$r" "$rate" "$secs" "$N" |
        tee -a "$TMP/report"
    echo "$rate" >>"$TMP/rates"
    rm -f "$DB" "$DB-wal" "$DB-shm"
done
MEDIAN=$(sort -n "$TMP/rates" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
{
    echo "median: $MEDIAN deliveries/s"
    if [ "$MEDIAN" -ge "$GOAL" ]; then
        echo "goal >= $GOAL deliveries/s: MET ($(awk -v m="$MEDIAN" -v g="$GOAL" 'BEGIN { printf "%.1fx", m / g }'))"
    else
        echo "goal >= $GOAL deliveries/s: NOT MET"
    fi
} | tee -a "$TMP/report"
cp "$TMP/report" "$OUT/webhooks.txt"
