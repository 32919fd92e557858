#!/usr/bin/env bash
# import.sh: `headroom import` of a year of demo events (Segment JSON lines)
# into a running headroomd, end to end: events/s, against the rate at which
# json-c alone parses the same lines on one core, measured in the same run.
#
#   bench/import.sh                          # 10M events (the issue's figure)
#   BENCH_EVENTS=1000000 bench/import.sh     # a quicker look
#
# The data: `headroom demo-data --accounts N --events FILE` (about 93 events an
# account over 365 days: N = BENCH_EVENTS / 93), cached in bench/out/ with
# its database; each run imports into a fresh copy of that database.
# `headroom import` sends the file's lines as they are (POST /v1/import, chunks
# of 900 KB, 24 on the wire); headroomd parses each line once.
# headroomd: --durability normal, default threads, not pinned (the import
# and the server share the two cores, as they would on a small host). The
# example catalog's playbooks fire webhooks as the import moves accounts;
# they go to a local nginx answering 200 (as a reachable CRM or Slack
# would), not to the examples' example.com hosts, which this sandbox cannot
# resolve: the failing deliveries and their retries took a quarter of the
# server's CPU. BENCH_WEBHOOKS=asis keeps the catalog's URLs.
# The reference (build/bench/bench_import_ref, bench/import_ref.c): json-c
# parsing every line of the file on one core, freeing each object: the floor
# of any import that reads its events with json-c.
#
# HEADROOM_CLI overrides the `headroom` binary (to compare two builds of it).
# Checks afterwards that the log holds every imported event once (besides
# headroom's own headroom.* events the import set off).
# Goal: >= 300,000 events/s. Prints the summary, also to bench/out/import.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
EVENTS=${BENCH_EVENTS:-10000000}
CONFIG=$ROOT/examples/boards/headroom.yaml
export HEADROOM_SECRET_KEY=${HEADROOM_SECRET_KEY:-sk_bench_0123456789}
export HEADROOM_WRITE_KEY=${HEADROOM_WRITE_KEY:-wk_bench_0123456789}
. "$ROOT/bench/lib.sh"
for t in sqlite3; do command -v "$t" >/dev/null || die "$t is required"; done
for b in headroomd headroom bench/bench_import_ref; do
    [ -x "$BUILD/$b" ] || die "build first: cmake -S . -B build && cmake --build build"
done
mkdir -p "$OUT"
ACCOUNTS=$(( (EVENTS + 92) / 93 ))
DATA=$OUT/import-$ACCOUNTS
if [ ! -s "$DATA.jsonl" ] || [ ! -f "$DATA.ok" ] || [ "${BENCH_FRESH:-0}" = 1 ]; then
    rm -f "$DATA.db" "$DATA.db-wal" "$DATA.db-shm" "$DATA.jsonl" "$DATA.ok"
    echo "generating $ACCOUNTS accounts and a year of their events ..."
    "$BUILD/headroom" demo-data --accounts "$ACCOUNTS" --db "$DATA.db" --config "$CONFIG" \
        --events "$DATA.jsonl" >/dev/null
    touch "$DATA.ok"
fi
LINES=$(wc -l <"$DATA.jsonl")
MB=$(( $(stat -c %s "$DATA.jsonl") / 1048576 ))
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-import.XXXXXX")
DB=$TMP/h.db
SRV_PID='' RX_PID=''
cleanup() { stop_pid SRV_PID; stop_pid RX_PID; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
echo "import: $LINES events ($MB MiB of JSON lines) for $ACCOUNTS accounts"

echo "reference: bench_import_ref (json-c parse of every line, one core) ..."
"$BUILD/bench/bench_import_ref" "$DATA.jsonl" | tr ' ' '\n' >"$TMP/ref.kv"
REF_RPS=$(kv lines_per_s "$TMP/ref.kv")
echo "  $REF_RPS lines/s"

cp "$DATA.db" "$DB"
RUN_CONFIG=$CONFIG
if [ "${BENCH_WEBHOOKS:-local}" != asis ]; then
    command -v nginx >/dev/null || die "nginx is required for the webhook receiver (or BENCH_WEBHOOKS=asis)"
    start_nginx RX_PID ok
    RUN_CONFIG=$TMP/headroom.yaml
    sed -E "s#https://[a-z.]*example\.com#$NGINX_URL#g" "$CONFIG" >"$RUN_CONFIG"
fi
"$BUILD/headroomd" --config "$RUN_CONFIG" --db "$DB" --listen 127.0.0.1:0 --durability normal \
    --log-level warn --ready-file "$TMP/ready" >"$TMP/headroomd.log" 2>&1 &
SRV_PID=$!
wait_file "$TMP/ready" "$SRV_PID" || { cat "$TMP/headroomd.log" >&2; die "headroomd did not start"; }
URL=$(head -n1 "$TMP/ready")
echo "headroom import ..."
"${HEADROOM_CLI:-$BUILD/headroom}" import --restart --url "$URL" --key "$HEADROOM_WRITE_KEY" "$DATA.jsonl" \
    >"$TMP/import.txt" 2>"$TMP/import.err" || { cat "$TMP/import.err" >&2; die "import failed"; }
cat "$TMP/import.txt"
rm -f "$DATA.jsonl.import-state"
RATE=$(sed -n 's/.* \([0-9]*\) events\/s$/\1/p' "$TMP/import.txt")
IMPORTED=$(sed -n 's/^imported \([0-9]*\) events.*/\1/p' "$TMP/import.txt")
stop_pid SRV_PID
# a row holds n events (one account's, of one commit and type; headroom's
# own events have a row each)
ROWS=$(sqlite3 "$DB" "SELECT sum(n) FROM events WHERE type = 'track' AND event NOT LIKE 'headroom.%'")
WEBHOOKS_OK=$(sqlite3 "$DB" "SELECT count(*) FROM deliveries WHERE code BETWEEN 200 AND 299")
WEBHOOKS_FAILED=$(sqlite3 "$DB" "SELECT count(*) FROM deliveries WHERE code NOT BETWEEN 200 AND 299")
{
    echo
    echo "== import $(date -u +%Y-%m-%dT%H:%M:%SZ), $LINES events, load $LOAD =="
    echo "playbook webhooks to ${NGINX_URL:-the catalog URLs}: $WEBHOOKS_OK delivered, $WEBHOOKS_FAILED failed attempts"
    printf '%-38s %10s\n' "" "events/s"
    printf '%-38s %10s\n' "headroom import -> headroomd" "$RATE"
    printf '%-38s %10s\n' "json-c parse alone, one core (ref)" "$REF_RPS"
    awk -v a="$RATE" -v b="$REF_RPS" 'BEGIN { printf "ratio import/parse: %.2fx\n", (b > 0) ? a / b : 0 }'
    awk -v a="$RATE" 'BEGIN { printf "goal >= 300000 events/s: %s\n", (a >= 300000) ? "MET" : "NOT MET" }'
    if [ "$ROWS" = "$IMPORTED" ] && [ "$IMPORTED" = "$LINES" ]; then
        echo "check events logged == lines imported: OK ($ROWS)"
    else
        echo "check events logged == lines imported: FAILED (logged $ROWS, imported $IMPORTED, lines $LINES)"
        exit 1
    fi
} | tee "$OUT/import.txt"
