#!/usr/bin/env bash
# playbooks.sh: what sales playbooks (docs/PLAYBOOKS.md) cost headroomd, with
# BENCH_PLAYBOOKS (50) generated playbooks active. Two parts:
#
#   1. ingest: the signal evaluation cost per ingested event. The load of
#      bench/ingest.sh (build/bench/bench_ingest_load: POST /v1/batch of
#      "API Called" track messages) against headroomd with the generated
#      catalog, and with the same catalog minus its `playbooks:` section (the
#      reference, measured in the same run), alternating over BENCH_ROUNDS
#      rounds, each on a fresh database. Reports events/s of each and the
#      ratio with/without (goal >= 0.8x).
#   2. sweep: a sweep over every account (BENCH_SWEEP_ACCOUNTS, 1M, the
#      cached `headroom demo-data` database of bench/lib.sh) with the same
#      catalog: its seconds (goal <= 2 s) and the p99 of POST /v1/check
#      (wrk, bench/check.lua) during a sweep (goal <= 5 ms), next to the p99
#      without a sweep measured in the same run.
#
#   bench/playbooks.sh                               # both parts (~10 min here, 1M accounts)
#   BENCH_PARTS=ingest bench/playbooks.sh            # part 1 only (~3 min)
#   BENCH_PARTS=sweep BENCH_SWEEP_ACCOUNTS=100000 bench/playbooks.sh
#
# The catalog (bench/out/playbooks-catalog.yaml; the reference without
# playbooks: bench/out/playbooks-catalog-off.yaml): examples/boards/
# headroom.yaml up to its "# Sales playbooks" line, then two teams, the
# example's scoring and webhook retry policy (in both catalogs: what differs
# is the playbooks alone), and BENCH_PLAYBOOKS playbooks drawn by a fixed
# Park-Miller generator, so the catalog is the same everywhere:
#   signal   2-4 clauses joined by &&: 1-2 filters (a plan test in two of
#            three, else days_to_renewal() <= 60, account.employees >= 100,
#            !has_addon(...), account.industry == ..., account.interval ==
#            ...) and 1-3 signals drawn from 16 typical ones: counts of
#            events in 1-30 day windows ("API Called", "Board Created",
#            "Board Opened", headroom.user_added, headroom.feature_denied),
#            active_days, usage_pct of api_calls/boards/seats (one of them an
#            `a || b`), users(), active_users(7d), role_active_days(
#            "decision_maker", 7d), growth("api_calls", 30d), sum(...)
#   value    the first signal clause's number; a message with {{account.name}},
#            {{account.plan}}, {{account.owner}} and {{signal.value}}
#   actions  one task (owner, team:ae or team:csm round robin), no webhooks;
#            cooldown 7-90 days
#
# Part 1 layout (as bench/ingest.sh): headroomd --threads BENCH_THREADS
# --durability normal on core 0, a fresh database per run, BENCH_ACCOUNTS
# accounts created first with PUT /v1/accounts/{id} (plans in turn free, pro,
# business, business, enterprise, so that the plan tests go both ways); the
# load generator on core 1 sends BENCH_EVENTS events in batches of BENCH_BATCH
# over BENCH_CONNECTIONS connections. Each ingested account is queued for
# evaluation (every playbook's signal, and the score) on headroomd's
# playbooks thread, which shares core 0 with the request threads. Odd rounds
# run with playbooks first, even rounds without first. A run fails unless
# every event is acknowledged; with playbooks, the firings (signals that went
# true as the counts grew) are reported from /metrics.
#
# Part 2 layout: headroomd --threads 1 on core 0 (as bench/check.sh) with the
# catalog and --sweep-seconds 3600 (no timed sweep gets in the way), on a
# fresh copy of the cached database (the sweeps write signal state and
# tasks). A sweep is triggered with SIGHUP (a catalog reload sweeps at once)
# and is over when headroom_playbook_sweeps_total grows; its time is
# headroom_playbook_last_sweep_seconds (the sweep only, not the reload).
# First one sweep that fires every signal already true in the demo data
# (reported, not counted: a one-time catch-up), then BENCH_SWEEPS rounds of:
#   idle   a sweep with no requests: the sweep's own seconds (the goal)
#   ref    wrk -t1 -cBENCH_CONNS (bench/check.lua) on core 1 for
#          BENCH_SECONDS, no sweep: the p99 to compare with
#   hup    the same wrk started, SIGHUP 0.2 s later, and wrk stopped (SIGINT:
#          it prints its figures) as soon as the sweep is over: the p99 while
#          the catalog is reloaded and the sweep runs (the window also holds
#          those 0.2 s and up to 0.1 s of polling)
#   sweep  SIGHUP first, the same wrk started once the reload is done
#          (headroom_catalog_reloads_total grew) and stopped when the sweep is
#          over: the p99 during the sweep alone, as with a timed sweep
#          (--sweep-seconds), which reloads nothing
# (odd rounds ref, hup, sweep; even rounds the other way round). hup and
# sweep also give the sweep's seconds while it shares the core with
# requests. wrk's percentiles are corrected for coordinated omission (a
# stall counts for the requests it held back), as in bench/check.sh. The
# demo accounts have no event history (`demo-data` without --events):
# count() and the like read empty windows.
#
# Environment:
#   BENCH_PARTS           ingest,sweep (default both)
#   BENCH_PLAYBOOKS       playbooks generated (50)
#   BENCH_ROUNDS          part 1 rounds, each one run with and one without (5);
#                         medians are reported, the ratio is the median of the
#                         per-round ratios
#   BENCH_EVENTS          part 1 events per run (500000)
#   BENCH_CONNECTIONS     part 1 load generator connections (16)
#   BENCH_BATCH           part 1 messages per POST /v1/batch (100)
#   BENCH_ACCOUNTS        part 1 accounts the events are spread over (200)
#   BENCH_THREADS         part 1 headroomd --threads (16, as bench/ingest.sh)
#   BENCH_SWEEP_ACCOUNTS  part 2 accounts in the demo database (1000000)
#   BENCH_SWEEPS          part 2 measured rounds (3); medians are reported
#   BENCH_SECONDS         part 2 seconds of the wrk reference run (5)
#   BENCH_WARMUP          part 2 seconds of unrecorded wrk warm-up, once (2)
#   BENCH_CONNS           part 2 wrk connections (64)
#   BENCH_SWEEP_TIMEOUT   part 2 seconds to wait for one sweep (1200)
#   BENCH_FRESH=1         regenerate the cached demo database in bench/out/
#   BENCH_PERF=1          also `perf record` headroomd during the first run
#                         with playbooks of part 1 (bench/out/playbooks-
#                         ingest-perf.data) and the first idle sweep of part 2
#                         (bench/out/playbooks-sweep-perf.data), and print the
#                         top symbols (BENCH_PERF_OPTS, default -g)
#   HEADROOM_BUILD        build directory (default build/)
#   SERVER_CPU / CLIENT_CPU  cores for headroomd and the clients (0 and 1)
#
# The summary goes to bench/out/playbooks.txt. Exits 1 when a step fails
# (not when a goal is missed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
PARTS=${BENCH_PARTS:-ingest,sweep}
NPB=${BENCH_PLAYBOOKS:-50}
ROUNDS=${BENCH_ROUNDS:-5}
EVENTS=${BENCH_EVENTS:-500000}
ICONNS=${BENCH_CONNECTIONS:-16}
BATCH=${BENCH_BATCH:-100}
IACCOUNTS=${BENCH_ACCOUNTS:-200}
THREADS=${BENCH_THREADS:-16}
SACCOUNTS=${BENCH_SWEEP_ACCOUNTS:-1000000}
SWEEPS=${BENCH_SWEEPS:-3}
SECONDS_=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-64}
SWEEP_TIMEOUT=${BENCH_SWEEP_TIMEOUT:-1200}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONFIG=$ROOT/examples/boards/headroom.yaml   # the base of the catalogs; demo-data
CAT_ON=$OUT/playbooks-catalog.yaml
CAT_OFF=$OUT/playbooks-catalog-off.yaml
export HEADROOM_SECRET_KEY=${HEADROOM_SECRET_KEY:-sk_bench_0123456789}
export HEADROOM_WRITE_KEY=${HEADROOM_WRITE_KEY:-wk_bench_0123456789}

. "$ROOT/bench/lib.sh"
do_ingest=0 do_sweep=0
case ",$PARTS," in *,ingest,*) do_ingest=1 ;; esac
case ",$PARTS," in *,sweep,*) do_sweep=1 ;; esac
[ $do_ingest = 1 ] || [ $do_sweep = 1 ] || die "BENCH_PARTS must name ingest and/or sweep"
for t in curl taskset sqlite3; do
    command -v "$t" >/dev/null || die "$t is required (apt-get install curl util-linux sqlite3)"
done
[ $do_sweep = 0 ] || command -v wrk >/dev/null || die "wrk is required (apt-get install wrk)"
[ "${BENCH_PERF:-0}" = 0 ] || command -v perf >/dev/null || die "BENCH_PERF=1 needs perf"
[ -x "$BUILD/headroomd" ] && [ -x "$BUILD/headroom" ] || die "build first: cmake -S . -B build && cmake --build build"
[ $do_ingest = 0 ] || [ -x "$BUILD/bench/bench_ingest_load" ] ||
    die "build first: cmake --build build --target bench_ingest_load"
[ "$(nproc)" -ge 2 ] || echo "playbooks.sh: warning: fewer than 2 cores; server and client will share one" >&2
[ "$NPB" -ge 1 ] && [ "$NPB" -le 999 ] || die "BENCH_PLAYBOOKS must be 1..999"
[ "$IACCOUNTS" -ge 1 ] && [ "$IACCOUNTS" -le 999999 ] || die "BENCH_ACCOUNTS must be 1..999999"

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-playbooks.XXXXXX")
IDB=$OUT/playbooks-ingest.db     # part 1, one run at a time
SDB=$OUT/playbooks-sweep.db      # part 2, a copy of the cached demo database
SRV_PID='' LOAD_PID='' WRK_PID='' PERF_PID=''
cleanup() {
    stop_pid LOAD_PID
    stop_pid WRK_PID
    stop_pid PERF_PID INT
    stop_pid SRV_PID
    rm_db "$IDB"
    rm_db "$SDB"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---- the catalogs ----------------------------------------------------------------
# gen_catalog on|off: the example's catalog up to its playbooks, teams,
# scoring, webhook policy and (on) NPB generated playbooks.
gen_catalog() {
    awk '/^# Sales playbooks/ { exit } { print }' "$CONFIG"
    awk -v n="$NPB" -v with="$1" '
    function rnd(k) { seed = (seed * 16807) % 2147483647; return seed % k }
    function pick(a, na, u,   c) { do c = 1 + rnd(na); while ((u, c) in used); used[u, c] = 1; return a[c] }
    BEGIN {
        seed = 20261122
        print "# Sales playbooks: generated by bench/playbooks.sh (" (with == "on" ? n " playbooks" : "none: the reference") ")."
        print "teams:"
        print "  ae: [alice, bob]"
        print "  csm: [carol, dave, erin]"
        print ""
        print "scoring:"
        print "  weights: {usage_growth_30d: 30, active_users_7d: 25, limit_pressure: 25, decision_maker_active: 20}"
        print ""
        print "webhooks:"
        print "  retry: {initial: 5s, factor: 3, max_interval: 2h, max_attempts: 12}"
        if (with != "on") exit
        # filters: whom the playbook is for (the first is a plan test in two of three)
        np = split("account.plan != \"free\"@account.plan in [\"pro\", \"business\"]@account.plan == \"free\"@" \
                   "account.plan != \"enterprise\"", pl, "@")
        nf = split("days_to_renewal() <= 60@account.employees >= 100@!has_addon(\"extra_seats\")@" \
                   "account.industry == \"software\"@account.interval == \"year\"", fl, "@")
        # signals: what happened (the clause, a tab, its value expression)
        ns = split("count(\"headroom.user_added\", 7d) >= 3\tcount(\"headroom.user_added\", 7d)@" \
                   "count(\"API Called\", 7d) >= 1000\tcount(\"API Called\", 7d)@" \
                   "count(\"API Called\", 1d) >= 500\tcount(\"API Called\", 1d)@" \
                   "count(\"Board Created\", 30d) >= 10\tcount(\"Board Created\", 30d)@" \
                   "count(\"Board Opened\", 7d) >= 20\tcount(\"Board Opened\", 7d)@" \
                   "count(\"headroom.feature_denied\", 7d) >= 3\tcount(\"headroom.feature_denied\", 7d)@" \
                   "active_days(\"*\", 14d) >= 5\tactive_days(\"*\", 14d)@" \
                   "usage_pct(\"api_calls\") >= 0.8\tusage_pct(\"api_calls\")@" \
                   "usage_pct(\"boards\") >= 0.9\tusage_pct(\"boards\")@" \
                   "usage_pct(\"seats\") >= 1\tusage(\"seats\")@" \
                   "(usage_pct(\"api_calls\") >= 0.8 || usage_pct(\"boards\") >= 0.8)\tusage_pct(\"api_calls\")@" \
                   "users() >= 5\tusers()@" \
                   "active_users(7d) >= 3\tactive_users(7d)@" \
                   "role_active_days(\"decision_maker\", 7d) >= 2\trole_active_days(\"decision_maker\", 7d)@" \
                   "growth(\"api_calls\", 30d) >= 0.25\tgrowth(\"api_calls\", 30d)@" \
                   "sum(\"Export Finished\", \"rows\", 30d) > 10000\tsum(\"Export Finished\", \"rows\", 30d)", sg, "@")
        ncd = split("7d 14d 30d 30d 90d", cds, " ")
        print ""
        print "playbooks:"
        for (i = 1; i <= n; i++) {
            k = 2 + rnd(3)                      # 2-4 clauses: 1-2 filters, then signals
            kf = k == 2 ? 1 : 1 + rnd(2)
            split("", used); sig = ""; val = ""
            for (j = 0; j < kf; j++)
                sig = sig (sig == "" ? "" : " && ") (j == 0 && rnd(3) < 2 ? pick(pl, np, 1) : pick(fl, nf, 2))
            for (j = kf; j < k; j++) {
                split(pick(sg, ns, 3), part, "\t")
                sig = sig " && " part[1]
                if (val == "") val = part[2]
            }
            printf "  pb%03d:\n", i
            printf "    signal: '\''%s'\''\n", sig
            printf "    value: '\''%s'\''\n", val
            printf "    message: \"{{account.name}} ({{account.plan}}, owner {{account.owner}}) shows signal %d at {{signal.value}}: worth a call about the next tier.\"\n", i
            a = rnd(3)
            printf "    actions: [{type: task, assign: %s}]\n", a == 0 ? "\"team:ae\"" : a == 1 ? "\"team:csm\"" : "owner"
            printf "    cooldown: %s\n", cds[1 + rnd(ncd)]
        }
    }'
}
gen_catalog on >"$CAT_ON"
gen_catalog off >"$CAT_OFF"
for c in "$CAT_ON" "$CAT_OFF"; do
    "$BUILD/headroom" validate "$c" >"$TMP/validate.txt" 2>&1 ||
        { cat "$TMP/validate.txt" >&2; die "the generated catalog $c is invalid"; }
done
got=$(grep -c '^  pb[0-9]*:$' "$CAT_ON" || true)
[ "$got" = "$NPB" ] || die "the generated catalog has $got playbooks, not $NPB"

# ---- helpers -------------------------------------------------------------------------
# start_server CATALOG DB THREADS: headroomd on the server core; sets SRV_PID, URL
start_server() {
    rm -f "$TMP/ready"
    taskset -c "$SERVER_CPU" "$BUILD/headroomd" --config "$1" --db "$2" \
        --listen 127.0.0.1:0 --threads "$3" --durability normal --log-level warn \
        --sweep-seconds 3600 --ready-file "$TMP/ready" >"$TMP/headroomd.log" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 1 6000); do   # up to 5 min: loading 1M accounts takes a few seconds
        [ -s "$TMP/ready" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -s "$TMP/ready" ] || { cat "$TMP/headroomd.log" >&2; die "headroomd did not start"; }
    URL=$(head -n1 "$TMP/ready")
}

# metric NAME: a value from headroomd's GET /metrics
metric() {
    curl -sS --max-time 30 "$URL/metrics" | awk -v k="$1" '$1 == k { print $2; f = 1 } END { exit !f }' ||
        die "no $1 in GET /metrics"
}

# proc_ticks PID: CPU time used by the process so far (jiffies)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wait_idle: until headroomd uses (almost) no CPU for half a second, so that
# a sweep or an evaluation still running does not leak into the next figure
wait_idle() {
    local a b
    for _ in $(seq 1 240); do
        a=$(proc_ticks "$SRV_PID"); sleep 0.5; b=$(proc_ticks "$SRV_PID")
        [ $((b - a)) -le 2 ] && return 0
    done
    echo "  warning: headroomd was still busy after 2 minutes" >&2
}

# sweep_begin: SIGHUP, which reloads the catalog and then sweeps at once;
# sweep_wait: until headroom_playbook_sweeps_total grows. Sets SWEEP_S (the
# server's own figure, which leaves the reload out) and FIRED (signals fired
# meanwhile). sweep_now: both.
sweep_begin() {
    SW_S0=$(metric headroom_playbook_sweeps_total)
    SW_F0=$(metric headroom_playbook_fired_total)
    SW_R0=$(metric headroom_catalog_reloads_total)
    SW_T0=$(date +%s)
    kill -HUP "$SRV_PID"
}
sweep_wait() {
    while [ "$(metric headroom_playbook_sweeps_total)" = "$SW_S0" ]; do
        kill -0 "$SRV_PID" 2>/dev/null || { cat "$TMP/headroomd.log" >&2; die "headroomd died during a sweep"; }
        [ $(( $(date +%s) - SW_T0 )) -lt "$SWEEP_TIMEOUT" ] || die "no sweep ended within ${SWEEP_TIMEOUT}s"
        sleep 0.1
    done
    SWEEP_S=$(metric headroom_playbook_last_sweep_seconds)
    FIRED=$(( $(metric headroom_playbook_fired_total) - SW_F0 ))
    local n
    n=$(metric headroom_playbook_last_sweep_accounts)
    [ "$n" = "$SACCOUNTS" ] || die "the sweep evaluated $n accounts, not $SACCOUNTS"
    [ "$(metric headroom_catalog_reloads_total)" -gt "$SW_R0" ] || { cat "$TMP/headroomd.log" >&2; die "the catalog reload failed"; }
}
sweep_now() { sweep_begin; sweep_wait; }

perf_start() { # perf_start FILE: records headroomd into FILE until perf_stop
    perf record ${BENCH_PERF_OPTS:--g} -o "$1" -p "$SRV_PID" >"$TMP/perf.log" 2>&1 &
    PERF_PID=$!
    sleep 0.5
}
perf_stop() { # perf_stop FILE: stops the recording, prints the top symbols
    stop_pid PERF_PID INT
    echo "  perf record -> $1; top symbols (self):"
    perf report -i "$1" --no-children --sort symbol --stdio 2>/dev/null |
        awk '/^ +[0-9.]+%/ && n < 12 { print "   " $0; n++ }'
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
WHEN=$(date -u +%Y-%m-%dT%H:%M:%SZ)
: >"$TMP/summary"
echo "catalog: $NPB generated playbooks (bench/out/playbooks-catalog.yaml); reference without them:" \
     "bench/out/playbooks-catalog-off.yaml; load average before: $LOAD"

# ---- 1. ingestion with and without playbooks ---------------------------------------
# ingest_run on|off ROUND: one run on a fresh database; appends to $TMP/ingest
ingest_run() {
    local cat=$CAT_OFF
    [ "$1" = on ] && cat=$CAT_ON
    rm_db "$IDB"
    start_server "$cat" "$IDB" "$THREADS"
    # the accounts, one curl (one connection) per plan
    local p i created=0
    for p in free pro business enterprise; do
        for i in $(seq 0 $((IACCOUNTS - 1))); do
            case $((i % 5)) in 0) [ $p = free ] ;; 1) [ $p = pro ] ;; 4) [ $p = enterprise ] ;; *) [ $p = business ] ;; esac &&
                printf 'url = "%s/v1/accounts/acct_%06d"\noutput = "/dev/null"\n' "$URL" "$i"
        done >"$TMP/put.curl"
        [ -s "$TMP/put.curl" ] || continue
        curl -sS -X PUT -H "Authorization: Bearer $HEADROOM_SECRET_KEY" -H 'Content-Type: application/json' \
            -d "{\"plan\":\"$p\"}" -w '%{http_code}\n' -K "$TMP/put.curl" >"$TMP/put.codes" ||
            die "creating the accounts failed"
        created=$((created + $(grep -c '^201$' "$TMP/put.codes" || true)))
    done
    [ "$created" = "$IACCOUNTS" ] || die "created $created of $IACCOUNTS accounts"
    wait_idle
    local f0 hostport=${URL#http://} log=$OUT/playbooks-ingest-$1-$2.txt
    f0=$(metric headroom_playbook_fired_total)
    if [ "${BENCH_PERF:-0}" = 1 ] && [ "$1" = on ] && [ "$2" = 1 ]; then perf_start "$OUT/playbooks-ingest-perf.data"; fi
    local s0
    s0=$(cpu_ticks "$SERVER_CPU")
    taskset -c "$CLIENT_CPU" "$BUILD/bench/bench_ingest_load" "${hostport%:*}" "${hostport##*:}" \
        "$HEADROOM_WRITE_KEY" "$EVENTS" "$BATCH" "$ICONNS" "$IACCOUNTS" >"$log" &
    LOAD_PID=$!
    local rc=0
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=
    local busy
    busy=$(busy_pct "$s0" "$(cpu_ticks "$SERVER_CPU")")
    [ -z "$PERF_PID" ] || perf_stop "$OUT/playbooks-ingest-perf.data"
    [ "$rc" = 0 ] || { cat "$log" >&2; die "the load generator failed (see above)"; }
    [ "$(kv accepted "$log")" = "$EVENTS" ] || { cat "$log" >&2; die "not every event was accepted"; }
    wait_idle   # the evaluations of the last batches
    local fired
    fired=$(( $(metric headroom_playbook_fired_total) - f0 ))
    stop_pid SRV_PID
    rm_db "$IDB"
    echo "$2 $1 $(kv events_per_s "$log") $(kv p99_ms "$log") $fired $busy" >>"$TMP/ingest"
    printf '  round %d %-3s %8.0f events/s, request p99 %7.2f ms, %4d signals fired, server core %3d%% busy\n' \
        "$2" "$1" "$(kv events_per_s "$log")" "$(kv p99_ms "$log")" "$fired" "$busy"
}

if [ $do_ingest = 1 ]; then
    echo
    echo "== 1. ingestion: $EVENTS events a run, batches of $BATCH, $ICONNS connections, $IACCOUNTS accounts;" \
         "headroomd --threads $THREADS on cpu $SERVER_CPU, load generator on cpu $CLIENT_CPU; $ROUNDS round(s) =="
    : >"$TMP/ingest"
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then ingest_run on "$r"; ingest_run off "$r"; else ingest_run off "$r"; ingest_run on "$r"; fi
    done
    awk -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" -v n="$EVENTS" \
        -v b="$BATCH" -v c="$ICONNS" -v a="$IACCOUNTS" -v np="$NPB" '
    function median(x, k,   i, j, t) {
        for (i = 2; i <= k; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
        return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
    }
    $2 == "on"  { on[$1] = $3; onp[$1] = $4; fired[$1] = $5 }
    $2 == "off" { off[$1] = $3; offp[$1] = $4 }
    END {
        for (r in on) { k++; a1[k] = on[r]; a2[k] = off[r]; a3[k] = on[r] / off[r]; a4[k] = onp[r]; a5[k] = offp[r]; a6[k] = fired[r] }
        e1 = median(a1, k); e2 = median(a2, k); rr = median(a3, k); p1 = median(a4, k); p2 = median(a5, k); f = median(a6, k)
        printf "\n== playbooks: ingestion %s, %d playbooks, %d events a run, batches of %d, %d connections, %d accounts, %d round(s) (medians), load %s ==\n",
               when, np, n, b, c, a, k, load
        printf "%-28s %12s %14s %16s\n", "", "events/s", "us per event", "request p99 ms"
        printf "%-28s %12.0f %14.2f %16.2f\n", "with " np " playbooks", e1, 1e6 / e1, p1
        printf "%-28s %12.0f %14.2f %16.2f\n", "without (reference)", e2, 1e6 / e2, p2
        printf "signals fired during a run with playbooks: %d\n", f
        printf "ratio with/without: %.2fx, the median of the per-round ratios (sorted:", rr
        for (i = 1; i <= k; i++) printf " %.2f", a3[i]
        printf "); ratio of the medians: %.2fx\n", e1 / e2
        printf "goal events/s with %d playbooks >= 0.8x without: %s (%.2fx)\n", np, (rr >= 0.8) ? "MET" : "NOT MET", rr
    }' "$TMP/ingest" | tee -a "$TMP/summary"
fi

# ---- 2. sweeps over the demo database ----------------------------------------------------
# wrk_window SECONDS LOG [hup|sweep]: wrk on the client core for SECONDS. With
# "hup": SIGHUP 0.2 s after wrk starts, and wrk stopped as soon as the sweep
# is over (the window holds the catalog reload and the sweep). With
# "sweep": SIGHUP first, wrk started once the reload is done (GET /metrics
# shows it) and stopped when the sweep is over (the sweep alone). Sets RPS,
# P99, PMAX (ms), SERVER_PCT, and SWEEP_S and FIRED with hup or sweep.
wrk_window() {
    local s0 s1 dur=$1 mode=${3:-}
    [ -z "$mode" ] || dur=$SWEEP_TIMEOUT
    if [ "$mode" = sweep ]; then
        sweep_begin
        while [ "$(metric headroom_catalog_reloads_total)" = "$SW_R0" ]; do
            [ $(( $(date +%s) - SW_T0 )) -lt 60 ] || die "the catalog reload did not end within 60 s"
            sleep 0.02
        done
    fi
    s0=$(cpu_ticks "$SERVER_CPU")
    BENCH_ACCOUNTS=$SACCOUNTS taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$dur"s --latency \
        -s "$ROOT/bench/check.lua" "$URL" >"$2" 2>&1 &
    WRK_PID=$!
    if [ "$mode" = hup ]; then sleep 0.2; sweep_begin; fi
    if [ -n "$mode" ]; then
        sweep_wait
        kill -INT "$WRK_PID" 2>/dev/null || true   # wrk prints its figures on SIGINT
    fi
    local rc=0
    wait "$WRK_PID" || rc=$?
    WRK_PID=
    s1=$(cpu_ticks "$SERVER_CPU")
    [ "$rc" = 0 ] || { cat "$2" >&2; die "wrk failed"; }
    if grep -q "Non-2xx" "$2"; then cat "$2" >&2; die "wrk saw non-2xx responses"; fi
    SERVER_PCT=$(busy_pct "$s0" "$s1")
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$2")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$2")")
    PMAX=$(to_ms "$(awk '$1 == "Latency" {print $4}' "$2")")
    [ -n "$RPS" ] && [ -n "$P99" ] || { cat "$2" >&2; die "cannot parse wrk output"; }
    local errs
    errs=$(grep "Socket errors" "$2" || true)
    [ -z "$errs" ] || echo "  $errs" >&2
}

if [ $do_sweep = 1 ]; then
    # the demo database, cached; another benchmark's cache of the same size
    # (the same `headroom demo-data`) saves generating it
    DB=$OUT/playbooks-$SACCOUNTS.db
    if [ "${BENCH_FRESH:-0}" != 1 ] && [ ! -f "$DB.ok" ]; then
        for other in "$OUT/startup-$SACCOUNTS.db" "$OUT/check-$SACCOUNTS.db"; do
            [ -f "$other.ok" ] || continue
            echo "copying the demo database $other to $DB ..."
            rm_db "$DB"
            sqlite3 "$other" ".backup '$DB'" && touch "$DB.ok" && break
        done
    fi
    demo_db "$DB" "$SACCOUNTS"
    echo
    echo "== 2. sweeps: $SACCOUNTS accounts (demo data), headroomd --threads 1 on cpu $SERVER_CPU;" \
         "wrk -t1 -c$CONNS POST /v1/check on cpu $CLIENT_CPU; $SWEEPS round(s) =="
    rm_db "$SDB"
    cp "$DB" "$SDB"
    t0=$(date +%s%N)
    start_server "$CAT_ON" "$SDB" 1
    echo "  headroomd ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms, RSS $(awk '/VmRSS/ {print int($2 / 1024)}' /proc/"$SRV_PID"/status) MiB"
    code=$(curl -sS -o "$TMP/sample.json" -w '%{http_code}' -X POST "$URL/v1/check" \
        -H "Authorization: Bearer $HEADROOM_SECRET_KEY" -H 'Content-Type: application/json' \
        -d '{"account":"acct_000042","feature":"boards"}') || die "curl to headroomd failed"
    [ "$code" = 200 ] && grep -q '"allowed"' "$TMP/sample.json" ||
        { cat "$TMP/sample.json" >&2; die "sample POST /v1/check returned HTTP $code without \"allowed\""; }
    wait_idle
    sweep_now
    FIRST_S=$SWEEP_S FIRST_FIRED=$FIRED
    printf '  first sweep (catch-up: fires every signal already true): %.3f s, %d signals fired (not counted)\n' "$SWEEP_S" "$FIRED"
    if [ "$WARMUP" -gt 0 ]; then wait_idle; wrk_window "$WARMUP" "$TMP/warmup.txt"; fi
    : >"$TMP/sweeps"
    for r in $(seq 1 "$SWEEPS"); do
        wait_idle
        [ "${BENCH_PERF:-0}" = 1 ] && [ "$r" = 1 ] && perf_start "$OUT/playbooks-sweep-perf.data"
        sweep_now
        idle_s=$SWEEP_S idle_f=$FIRED
        [ -z "$PERF_PID" ] || perf_stop "$OUT/playbooks-sweep-perf.data"
        order="ref hup sweep"
        [ $((r % 2)) = 1 ] || order="sweep hup ref"
        for what in $order; do
            wait_idle
            case $what in
            ref)
                wrk_window "$SECONDS_" "$OUT/playbooks-wrk-ref-$r.txt"
                ref_rps=$RPS ref_p99=$P99 ref_max=$PMAX ref_srv=$SERVER_PCT ;;
            hup)
                wrk_window 0 "$OUT/playbooks-wrk-hup-$r.txt" hup
                hup_rps=$RPS hup_p99=$P99 hup_max=$PMAX hup_s=$SWEEP_S hup_f=$FIRED hup_srv=$SERVER_PCT ;;
            sweep)
                wrk_window 0 "$OUT/playbooks-wrk-sweep-$r.txt" sweep
                sw_rps=$RPS sw_p99=$P99 sw_max=$PMAX sw_s=$SWEEP_S sw_f=$FIRED sw_srv=$SERVER_PCT ;;
            esac
        done
        echo "$r $idle_s $sw_s $ref_rps $ref_p99 $ref_max $sw_rps $sw_p99 $sw_max $((idle_f + sw_f + hup_f)) $hup_s $hup_rps $hup_p99 $hup_max" >>"$TMP/sweeps"
        printf '  round %d: idle sweep %.3f s; fired %d\n' "$r" "$idle_s" "$((idle_f + sw_f + hup_f))"
        printf '    %-34s %6.0f req/s p99 %6.2f ms max %7.2f ms (server core %3d%%)\n' \
            "no sweep (${SECONDS_} s)" "$ref_rps" "$ref_p99" "$ref_max" "$ref_srv" \
            "SIGHUP: reload + sweep ($hup_s s)" "$hup_rps" "$hup_p99" "$hup_max" "$hup_srv" \
            "sweep alone ($sw_s s)" "$sw_rps" "$sw_p99" "$sw_max" "$sw_srv"
    done
    RSS=$(awk '/VmRSS/ {print int($2 / 1024)}' /proc/"$SRV_PID"/status)
    stop_pid SRV_PID
    rm_db "$SDB"
    awk -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" -v n="$SACCOUNTS" \
        -v np="$NPB" -v c="$CONNS" -v s="$SECONDS_" -v fs="$FIRST_S" -v ff="$FIRST_FIRED" -v rss="$RSS" '
    function median(x, k,   i, j, t) {
        for (i = 2; i <= k; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
        return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
    }
    { k++; is[k] = $2; ls[k] = $3; rr[k] = $4; rp[k] = $5; rm[k] = $6; sr[k] = $7; sp[k] = $8; sm[k] = $9; fi_ += $10
      hs[k] = $11; hr[k] = $12; hp[k] = $13; hm[k] = $14 }
    END {
        i1 = median(is, k); l1 = median(ls, k); p0 = median(rp, k); p1 = median(sp, k); p2 = median(hp, k)
        printf "\n== playbooks: sweep %s, %d playbooks, %d accounts, %d round(s) (medians), load %s ==\n", when, np, n, k, load
        printf "%-36s %8.3f s  (%.2f us an account, %.0f ns an account and playbook)\n", "sweep, no requests", i1,
               1e6 * i1 / n, 1e9 * i1 / n / np
        printf "%-36s %8.3f s\n", "sweep, during wrk -c" c " (SIGHUP)", median(hs, k)
        printf "%-36s %8.3f s\n", "sweep, during wrk -c" c " (alone)", l1
        printf "%-36s %8.3f s  (%d signals fired; not counted)\n", "first sweep (catch-up)", fs, ff
        printf "%-36s %10s %10s %10s\n", "POST /v1/check, wrk -c" c, "req/s", "p99 (ms)", "max (ms)"
        printf "%-36s %10.0f %10.2f %10.2f\n", "no sweep (" s " s)", median(rr, k), p0, median(rm, k)
        printf "%-36s %10.0f %10.2f %10.2f\n", "SIGHUP: catalog reload + sweep", median(hr, k), p2, median(hm, k)
        printf "%-36s %10.0f %10.2f %10.2f\n", "the sweep alone (after the reload)", median(sr, k), p1, median(sm, k)
        printf "signals fired by the measured sweeps: %d (accounts changed meanwhile: a denied /v1/check is a headroom.feature_denied event); headroomd RSS at the end: %d MiB\n", fi_, rss
        printf "goal sweep over %d accounts <= 2 s: %s (%.3f s)\n", n, (i1 <= 2) ? "MET" : "NOT MET", i1
        printf "goal p99 of POST /v1/check during a sweep <= 5 ms: %s (%.2f ms SIGHUP-triggered, %.2f ms the sweep alone; %.2f ms without a sweep)\n",
               (p1 <= 5 && p2 <= 5) ? "MET" : "NOT MET", p2, p1, p0
    }' "$TMP/sweeps" | tee -a "$TMP/summary"
fi

{
    echo "# bench/playbooks.sh $WHEN, $(nproc) cores; load average before: $LOAD"
    cat "$TMP/summary"
} >"$OUT/playbooks.txt"
