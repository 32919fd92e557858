#!/usr/bin/env bash
# prompts.sh: GET /v1/prompts throughput and latency of headroomd with 200
# running campaigns, against headroomd's own POST /v1/check (the foundation's
# hot path) measured in the same run, on the same server and database.
#
#   bench/prompts.sh                    # 3 rounds of 10 s per endpoint (~1.5 min)
#   BENCH_SECONDS=5 BENCH_ROUNDS=2 bench/prompts.sh
#
# The catalog: examples/boards/headroom.yaml up to its "# In-app upgrade
# prompts" line, plus a generated `throttle: {per_user: 1, per: 1d}` and
# BENCH_CAMPAIGNS campaigns (written to bench/out/prompts-catalog.yaml):
#   triggers   on_load 20%, {page: "/p<N>/*"} 20% (N 1..20),
#              {feature_denied: private_boards} 10%, {feature_denied: sso} 10%,
#              {limit_hit: boards} 10%, {event: "E<N>"} 30% (N 1..20)
#   rules      2-5 clauses in all: an audience of 1-3 (two in three start with
#              a plan test) and a gate of 0-2, drawn from 18 typical ones
#              (account.plan == "free", count("Board Created", 30d) >= 2,
#              usage_pct("boards") >= 0.5, user.role in ["admin", "member"],
#              days_since(account.created_at) > 3, users() >= 2, traits ...)
#   variants   every third campaign a/b/holdout (45/45/10); every fourth per user
#   caps       4 in 5 (1-3 shows per 1-7 days, a cooldown after a dismissal)
#   priorities random 0-99; all running (a few between starts_at and ends_at)
# So a request with trigger on_load or page weighs the 40 on_load campaigns
# plus the 2 page ones matching its path (none for /p21../p25), one with
# feature_denied:private_boards or limit_hit:boards 20, one with event:E<N>
# 3 (none for E21..E25): ~28 campaigns a request on average with the mix of
# bench/prompts.lua. headroomd checks dates, caps and the throttle first
# and evaluates audiences and gates in priority order only until it has a
# prompt to show (docs/CAMPAIGNS.md).
#
# The throttle (at most one prompt per user per day, as in the example) is
# kept on purpose: once a user has been shown a prompt, their later requests
# show nothing, which is what most requests in production see (headroomd
# answers them without evaluating rules). The summary reports how many
# prompts were shown.
#
# The database: `headroom demo-data --accounts BENCH_ACCOUNTS --users 1`
# (1-2 users per account, ~1.5 per account), plus 30 days of product events
# imported once through headroomd (per user 0-3 "Board Created" and 0-5
# "Board Opened" on days 1-30 before the run), so that count(), active_days()
# and user_count() read a real history; cached in bench/out/ (BENCH_FRESH=1
# makes it again) and copied fresh for every round, so that each round starts
# with no prompt shown. BENCH_USERS (default 100000) (account, user) pairs of
# it, sampled once, are what the requests draw from (bench/prompts.lua).
#
# Layout as in check.sh: headroomd --threads 1 alone on core 0, wrk -t1 -c64
# on core 1 (headroomd and headroom are copied from HEADROOM_BUILD first, so
# that a rebuild during the run cannot mix versions). Each round starts
# headroomd on a fresh copy of the database and measures POST /v1/check
# (bench/check.lua, random accounts and features) and GET /v1/prompts
# (bench/prompts.lua) one after the other on that server, each with its own
# warm-up; odd rounds check first, even rounds prompts
# first, so that a drift of the shared VM hits both alike. The prompts
# warm-up and timed run draw different request streams (BENCH_SEED in
# prompts.lua), as a continuing stream of page loads would.
#
# Environment:
#   BENCH_SECONDS   seconds of measurement per endpoint (default 10)
#   BENCH_WARMUP    seconds of unrecorded warm-up per endpoint (default 2)
#   BENCH_ROUNDS    rounds (default 3); medians are reported, the ratio is the
#                   median of the per-round ratios
#   BENCH_CONNS     wrk connections (default 64)
#   BENCH_ACCOUNTS  accounts in the demo database (default 100000)
#   BENCH_USERS     (account, user) pairs the prompt requests draw from
#                   (default 100000)
#   BENCH_CAMPAIGNS campaigns generated (default 200)
#   BENCH_FRESH=1   regenerate the cached database in bench/out/
#   BENCH_PERF=1    also `perf record` headroomd during round 1's timed prompts
#                   run, into bench/out/prompts-perf.data (BENCH_PERF_OPTS,
#                   default -g)
#   HEADROOM_BUILD  build directory with headroomd and headroom (default build/)
#   SERVER_CPU / CLIENT_CPU  cores for the server and wrk (default 0 and 1)
#
# Prints the figures, the ratio prompts/check and the goals (>= 0.5x of
# /v1/check's req/s, p99 <= 3 ms at 64 connections); also written to
# bench/out/prompts.txt. Exits 1 when a step fails (not when a goal is missed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HEADROOM_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
SECONDS_=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-64}
ACCOUNTS=${BENCH_ACCOUNTS:-100000}
USERS=${BENCH_USERS:-100000}
NCAMP=${BENCH_CAMPAIGNS:-200}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONFIG=$ROOT/examples/boards/headroom.yaml   # for demo-data (lib.sh demo_db)
CATALOG=$OUT/prompts-catalog.yaml             # what headroomd serves
export HEADROOM_SECRET_KEY=${HEADROOM_SECRET_KEY:-sk_bench_0123456789}
export BENCH_ACCOUNTS=$ACCOUNTS

. "$ROOT/bench/lib.sh"
for t in wrk curl taskset sqlite3 shuf; do
    command -v "$t" >/dev/null || die "$t is required (apt-get install wrk curl util-linux sqlite3 coreutils)"
done
[ -x "$BUILD/headroomd" ] && [ -x "$BUILD/headroom" ] || die "build first: cmake -S . -B build && cmake --build build"
[ "$(nproc)" -ge 2 ] || echo "prompts.sh: warning: fewer than 2 cores; server and client will share one" >&2
[ "$NCAMP" -ge 1 ] && [ "$NCAMP" -le 256 ] || die "BENCH_CAMPAIGNS must be 1..256 (headroomd weighs at most 256 candidates)"

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hr-bench-prompts.XXXXXX")
SRV_PID='' WRK_PID='' PERF_PID=''
cleanup() {
    stop_pid WRK_PID
    stop_pid PERF_PID INT
    stop_pid SRV_PID
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Copies of the binaries, so that a rebuild during the run cannot mix versions.
mkdir "$TMP/bin"
cp "$BUILD/headroomd" "$BUILD/headroom" "$TMP/bin/" || die "cannot copy the binaries from $BUILD"
BUILD=$TMP/bin

# ---- the catalog ---------------------------------------------------------------
# The example's catalog without its campaigns, then NCAMP generated ones. A
# Park-Miller generator (not awk's rand(), which differs between awks) keeps
# the catalog the same everywhere.
gen_catalog() {
    awk '/^# In-app upgrade prompts/ { exit } { print }' "$CONFIG"
    awk -v n="$NCAMP" '
    function rnd(k) { seed = (seed * 16807) % 2147483647; return seed % k }
    function clause(from, to,   c) {
        do c = from + rnd(to - from + 1); while (c in used)
        used[c] = 1
        return cl[c]
    }
    BEGIN {
        seed = 20261122
        # 1-3: plan tests; then the rest
        nc = split("account.plan == \"free\"|account.plan in [\"free\", \"pro\"]|account.plan != \"enterprise\"|" \
                   "count(\"Board Created\", 30d) >= 2|usage_pct(\"boards\") >= 0.5|" \
                   "user.role in [\"admin\", \"member\"]|days_since(account.created_at) > 3|" \
                   "users() >= 2|!trial_used(\"private_boards\")|usage(\"seats\") >= 2|" \
                   "active_days(\"*\", 14d) >= 3|account.employees >= 50|" \
                   "user_count(\"Board Opened\", 7d) >= 1|!has_addon(\"extra_boards\")|" \
                   "account.industry == \"software\"|usage_pct(\"api_calls\") >= 0.8|" \
                   "!has_feature(\"sso\")|user.role != \"viewer\"", cl, "|")
        ntype = split("modal banner tooltip lock_badge checklist", types, " ")
        print "# In-app upgrade prompts: generated by bench/prompts.sh (" n " campaigns)."
        print "throttle: {per_user: 1, per: 1d}"
        print ""
        print "campaigns:"
        for (i = 1; i <= n; i++) {
            k = i % 10
            if (k <= 1)      trig = "on_load"
            else if (k <= 3) trig = sprintf("{page: \"/p%d/*\"}", i % 20 + 1)
            else if (k == 4) trig = "{feature_denied: private_boards}"
            else if (k == 5) trig = "{feature_denied: sso}"
            else if (k == 6) trig = "{limit_hit: boards}"
            else             trig = sprintf("{event: \"E%d\"}", i % 20 + 1)
            na = 1 + rnd(3); ng = rnd(3)
            if (na + ng < 2) ng = 1
            if (na + ng > 5) ng = 5 - na
            split("", used)
            aud = (rnd(3) < 2) ? clause(1, 3) : clause(4, nc)
            for (j = 1; j < na; j++) aud = aud " && " clause(4, nc)
            gate = ""
            for (j = 0; j < ng; j++) gate = gate (j ? " && " : "") clause(4, nc)
            printf "  c%03d:\n", i
            printf "    trigger: %s\n", trig
            printf "    audience: '\''%s'\''\n", aud
            if (gate != "") printf "    gate: '\''%s'\''\n", gate
            t = types[1 + rnd(ntype)]
            print  "    content:"
            printf "      type: %s\n", t
            if (t == "tooltip" || t == "lock_badge")
                printf "      anchor: %s\n", k == 4 ? "private_boards" : k == 5 ? "sso" : "boards"
            printf "      title: {en: \"Campaign %d\", de: \"Kampagne %d\"}\n", i, i
            printf "      body: \"Pro gives you more boards, private boards and %d other things.\"\n", i
            if (k == 4)      print "      cta: {label: \"Try it 14 days\", action: start_trial}"
            else if (k == 5) print "      cta: {label: \"Talk to us\", action: book_call, url: \"https://example.com/book\"}"
            else printf "      cta: {label: \"Upgrade\", action: upgrade, plan: %s, url: \"/billing\"}\n", rnd(3) ? "pro" : "business"
            if (i % 3 == 0) {
                print  "    variants:"
                print  "      a:       {weight: 45}"
                printf "      b:       {weight: 45, content: {title: \"Campaign %d (b)\"}}\n", i
                print  "      holdout: {weight: 10, holdout: true}"
            }
            if (i % 4 == 0) print "    unit: user"
            if (i % 5 != 0)
                printf "    cap: {per_user: %d, per: %dd, cooldown_after_dismiss: %dd}\n", 1 + rnd(3), 1 + rnd(7), 3 + rnd(28)
            print  "    goal: {event: \"Plan Upgraded\", within: 14d}"
            printf "    priority: %d\n", rnd(100)
            # all of them running (the goal says 200 active), some within dates
            if (i % 25 == 1 || i % 50 == 7) print "    starts_at: \"2026-01-01T00:00:00Z\""
            if (i % 25 == 0 || i % 50 == 7) print "    ends_at: \"2036-01-01T00:00:00Z\""
            print ""
        }
    }'
}
gen_catalog >"$CATALOG"
"$BUILD/headroom" validate "$CATALOG" >"$TMP/validate.txt" 2>&1 ||
    { cat "$TMP/validate.txt" >&2; die "the generated catalog is invalid"; }

# ---- the database (cached) -----------------------------------------------------
DB=$OUT/prompts-$ACCOUNTS.db
PAIRS=$OUT/prompts-$ACCOUNTS-users-$USERS.txt

# start_server DB [extra env...]: headroomd on core 0 with the generated
# catalog; sets SRV_PID and URL
start_server() {
    local db=$1
    shift
    rm -f "$TMP/ready"
    env "$@" taskset -c "$SERVER_CPU" "$BUILD/headroomd" --config "$CATALOG" --db "$db" \
        --listen 127.0.0.1:0 --threads 1 --durability normal --log-level warn \
        --ready-file "$TMP/ready" >"$TMP/headroomd.log" 2>&1 &
    SRV_PID=$!
    wait_file "$TMP/ready" "$SRV_PID" || { cat "$TMP/headroomd.log" >&2; die "headroomd did not start"; }
    URL=$(head -n1 "$TMP/ready")
}

# 30 days of events per user, imported through headroomd's /v1/batch.
add_events() {
    local days=() d wk=wk_bench_prompts_0123456789
    for d in $(seq 1 30); do days+=("$(date -u -d "@$(( $(date +%s) - d * 86400 ))" +%Y-%m-%d)"); done
    sqlite3 -separator ' ' "$DB" 'SELECT account, id FROM users ORDER BY account, id' |
        awk -v days="${days[*]}" '
        function rnd(k) { seed = (seed * 16807) % 2147483647; return seed % k }
        function ev(name, maxd) {
            printf "{\"type\":\"track\",\"messageId\":\"pb-%s-%d\",\"userId\":\"%s\",\"event\":\"%s\",", $2, ++m, $2, name
            printf "\"timestamp\":\"%sT%02d:%02d:%02dZ\",\"context\":{\"groupId\":\"%s\"}}\n", day[1 + rnd(maxd)], rnd(24), rnd(60), rnd(60), $1
        }
        BEGIN { seed = 4242; split(days, day, " ") }
        { m = 0
          for (k = rnd(4); k > 0; k--) ev("Board Created", 30)
          for (k = rnd(6); k > 0; k--) ev("Board Opened", 14) }' >"$TMP/events.jsonl"
    echo "importing $(wc -l <"$TMP/events.jsonl") events into $DB ..."
    start_server "$DB" HEADROOM_WRITE_KEY=$wk
    "$BUILD/headroom" import --url "$URL" --key "$wk" --restart "$TMP/events.jsonl" >"$TMP/import.log" 2>&1 ||
        { cat "$TMP/import.log" >&2; die "headroom import failed"; }
    stop_pid SRV_PID
    sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
}

if [ "${BENCH_FRESH:-0}" = 1 ] || [ ! -f "$DB.events.ok" ]; then
    rm -f "$DB.ok" "$DB.events.ok" "$PAIRS"   # an interrupted import: start over
    demo_db "$DB" "$ACCOUNTS"
    add_events
    touch "$DB.events.ok"
fi
if [ ! -s "$PAIRS" ]; then
    # a fixed random source: the same sample every time
    sqlite3 -separator ' ' "$DB" 'SELECT account, id FROM users ORDER BY account, id' |
        shuf -n "$USERS" --random-source=<(yes 2>/dev/null) >"$PAIRS.tmp"
    mv "$PAIRS.tmp" "$PAIRS"
fi
NPAIRS=$(wc -l <"$PAIRS")
NUSERS_DB=$(sqlite3 "$DB" 'SELECT count(*) FROM users')
export BENCH_USERS_FILE=$PAIRS

# ---- helpers -----------------------------------------------------------------
# measure NAME SCRIPT ROUND: warm-up, then the timed run; sets RPS, P99 (ms),
# REQS (requests in warm-up and run), CLIENT_PCT, SERVER_PCT.
measure() {
    local log=$OUT/prompts-wrk-$1-$3.txt warm=0
    if [ "$WARMUP" -gt 0 ]; then
        BENCH_SEED=1 run_wrk "$2" "$URL" "$WARMUP" "$TMP/$1-warmup.txt"
        warm=$(awk '/requests in/ { print $1 }' "$TMP/$1-warmup.txt")
    fi
    if [ "$1" = prompts ] && [ "$3" = 1 ] && [ "${BENCH_PERF:-0}" = 1 ]; then
        perf record ${BENCH_PERF_OPTS:--g} -o "$OUT/prompts-perf.data" -p "$SRV_PID" >"$TMP/perf.log" 2>&1 &
        PERF_PID=$!
    fi
    BENCH_SEED=2 run_wrk "$2" "$URL" "$SECONDS_" "$log"
    [ -z "$PERF_PID" ] || stop_pid PERF_PID INT
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$log")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$log")")
    REQS=$(( warm + $(awk '/requests in/ { print $1 }' "$log") ))
    [ -n "$RPS" ] && [ -n "$P99" ] || { cat "$log" >&2; die "cannot parse wrk output"; }
    local errs
    errs=$(grep "Socket errors" "$log" || true)
    [ -z "$errs" ] || echo "  $1: $errs" >&2
    if [ "$CLIENT_PCT" -ge 90 ] && [ "$SERVER_PCT" -lt 95 ]; then
        echo "  warning: wrk used ${CLIENT_PCT}% of its core and the server core was ${SERVER_PCT}% busy:" \
             "the $1 figure is limited by the client" >&2
    fi
}

# A round's server: a fresh copy of the cached database, the generated
# catalog, and a sample of each endpoint.
start_round_server() {
    rm -f "$TMP/round.db" "$TMP/round.db-wal" "$TMP/round.db-shm"
    cp "$DB" "$TMP/round.db"
    start_server "$TMP/round.db"
    local code pair
    code=$(curl -sS -o "$TMP/sample.json" -w '%{http_code}' -X POST "$URL/v1/check" \
        -H "Authorization: Bearer $HEADROOM_SECRET_KEY" -H 'Content-Type: application/json' \
        -d '{"account":"acct_000042","feature":"boards"}') || die "curl to headroomd failed"
    if [ "$code" != 200 ] || ! grep -q '"allowed"' "$TMP/sample.json"; then
        cat "$TMP/sample.json" >&2; echo >&2
        die "sample POST /v1/check returned HTTP $code without \"allowed\" (wrong key or database?)"
    fi
    read -r -a pair <"$PAIRS"
    code=$(curl -sS -o "$TMP/sample.json" -w '%{http_code}' \
        -H "Authorization: Bearer $HEADROOM_SECRET_KEY" \
        "$URL/v1/prompts?user=${pair[1]}&account=${pair[0]}&trigger=limit_hit%3Aboards&page=%2Fp1%2Fboards%2F1") ||
        die "curl to headroomd failed"
    if [ "$code" != 200 ] || ! grep -q '"prompts"' "$TMP/sample.json"; then
        cat "$TMP/sample.json" >&2; echo >&2
        die "sample GET /v1/prompts returned HTTP $code without \"prompts\""
    fi
    SAMPLE_REQS=1
}

# ---- rounds: one server per round, /v1/check and /v1/prompts one after the other
echo "headroomd: --threads 1 on cpu $SERVER_CPU, $ACCOUNTS accounts ($NUSERS_DB users), $NCAMP campaigns" \
     "(bench/out/prompts-catalog.yaml), a fresh copy of the database per round"
echo "requests:  POST /v1/check (bench/check.lua) | GET /v1/prompts (bench/prompts.lua) over $NPAIRS users"
echo "client:    wrk -t1 -c$CONNS on cpu $CLIENT_CPU; $ROUNDS round(s) of ${WARMUP}s warm-up + ${SECONDS_}s per endpoint"
: >"$TMP/rounds"
for r in $(seq 1 "$ROUNDS"); do
    start_round_server
    order="check prompts"
    [ $((r % 2)) = 1 ] || order="prompts check"
    for what in $order; do
        measure "$what" "$ROOT/bench/$what.lua" "$r"
        printf -v "${what}_rps" '%s' "$RPS"
        printf -v "${what}_p99" '%s' "$P99"
        printf -v "${what}_cli" '%s' "$CLIENT_PCT"
        printf -v "${what}_srv" '%s' "$SERVER_PCT"
        [ "$what" != prompts ] || prompts_reqs=$((REQS + SAMPLE_REQS))
    done
    stop_pid SRV_PID   # flushes the campaign state
    # what the prompt requests showed: the throttle allows one per user, so
    # the users with shows in some campaign (kind 0 rows; the throttle itself
    # is not stored) are the prompts shown
    shown=$(sqlite3 "$TMP/round.db" "SELECT count(DISTINCT key) FROM prompt_state WHERE kind = 0 AND shows <> ''")
    exposed=$(sqlite3 "$TMP/round.db" "SELECT count(*) FROM prompt_state WHERE kind = 1 AND variant IS NOT NULL")
    echo "$r $check_rps $check_p99 $prompts_rps $prompts_p99 $shown $prompts_reqs $exposed" >>"$TMP/rounds"
    printf '  round %d: check %6.0f req/s p99 %5.2f ms (cpu %3d%%, wrk %3d%%) | prompts %6.0f req/s p99 %5.2f ms (cpu %3d%%, wrk %3d%%); %d of %d prompt requests showed one\n' \
        "$r" "$check_rps" "$check_p99" "$check_srv" "$check_cli" \
        "$prompts_rps" "$prompts_p99" "$prompts_srv" "$prompts_cli" "$shown" "$prompts_reqs"
done

# ---- report: medians over the rounds; the ratio is the median of each round's ratio
awk -v load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" -v c="$CONNS" -v s="$SECONDS_" -v n="$ACCOUNTS" \
    -v u="$NPAIRS" -v nc="$NCAMP" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
function median(a, k,   i, j, t) {
    for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
{ k++; ch[k] = $2; cp[k] = $3; pr[k] = $4; pp[k] = $5; rr[k] = $4 / $2; sh[k] = 100 * $6 / $7; ex[k] = $8 }
END {
    r = median(rr, k); c1 = median(ch, k); c2 = median(cp, k); p1 = median(pr, k); p2 = median(pp, k)
    printf "\n== prompts (HTTP) %s, %d campaigns, %d accounts, %d users, %d connections, %d x %d s (medians), load %s ==\n",
           when, nc, n, u, c, k, s, load
    printf "%-12s %12s %10s\n", "", "req/s", "p99 (ms)"
    printf "%-12s %12.0f %10.2f\n", "/v1/check", c1, c2
    printf "%-12s %12.0f %10.2f\n", "/v1/prompts", p1, p2
    printf "ratio prompts/check: %.2fx req/s, %.1fx p99\n", r, p2 / c2
    printf "prompt requests that showed a prompt: %.1f%% (throttle: 1 per user per day); units exposed: %d\n",
           median(sh, k), median(ex, k)
    printf "goal req/s >= 0.5x /v1/check: %s (%.2fx)\n", (r >= 0.5) ? "MET" : "NOT MET", r
    printf "goal p99 <= 3 ms at %d connections: %s (%.2f ms; /v1/check %.2f ms)\n", c,
           (p2 <= 3) ? "MET" : "NOT MET", p2, c2
}' "$TMP/rounds" | tee "$OUT/prompts.txt"
