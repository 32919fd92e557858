# lib.sh: helpers for the integration tests (sourced, never run).
#
# The tests start the real headroomd on a free port and drive it with curl,
# as a user would. Needs: bash, curl, python3 (for JSON; jq is not assumed).
#
#   hr_start [ARGS]     start headroomd (fresh temp dir on first use; reuses
#                       $DIR and its database afterwards); sets URL and PID
#   hr_stop             SIGTERM, wait, and check the exit status is 0
#   hr_kill9            kill -9 and reap
#   hr_fresh            forget $DIR: the next hr_start gets a new dir + db
#   api METHOD PATH [BODY] [CURL ARGS...]
#                       one request; sets STATUS, BODY and HEADERS (a file).
#                       BODY may be left out when the curl args follow (a
#                       third argument starting with -X/--x is a curl arg).
#                       Key: $API_KEY when set (empty = no Authorization
#                       header), else the secret key. Content type: $API_CT
#                       when set, else application/json (only with a body).
#   expect_status N     expect_json PATH VALUE     expect_py PYEXPR
#   expect_error STATUS CODE   expect_header NAME REGEX
#   check NAME CMD...   a check on any command's success
#   known_bug NAME CMD...  a check that a known bug makes fail: a skip
#   hr_done             prints "N passed, M failed"; exit 1 if any failed
#
# JSON paths are dotted: upgrade.price_delta.amount, accounts.0.id. A value
# compares as text: strings bare, everything else as compact JSON (true,
# null, 500, {"a":1}). A missing path reads as <missing>.

set -u

if [ -z "${HR_BIN:-}" ] || [ -z "${HR_SRC:-}" ]; then
    echo "HR_BIN (the build dir) and HR_SRC (the repo root) must be set" >&2
    exit 2
fi

# python3 through a version manager's shim costs ~50 ms a call: resolve it once.
HR_PY=$(command python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -x "$HR_PY" ] || HR_PY=$(command -v python3)
python3() { "$HR_PY" "$@"; }

HR_SK=sk_test_integration_0123456789
HR_PK=pk_test_integration_0123456789
HR_IDSECRET=idsecret_integration_current
HR_IDSECRET_OLD=idsecret_integration_previous
export HEADROOM_SECRET_KEY=$HR_SK
export HEADROOM_PUBLISHABLE_KEY=$HR_PK
export HEADROOM_IDENTITY_SECRET=$HR_IDSECRET
export HEADROOM_IDENTITY_SECRET_OLD=$HR_IDSECRET_OLD
unset HEADROOM_URL HEADROOM_IDENTITY_WINDOW HEADROOM_OFREP_ACCOUNT_FIELD

HR_PASS=0
HR_FAIL=0
HR_DIRS=()
DIR=""
URL=""
PID=""
STATUS=""
BODY=""
HEADERS=""
HR_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/hr-it-scratch.XXXXXX")
HR_DIRS+=("$HR_SCRATCH")

hr_cleanup() {
    local rc=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -9 "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    # background jobs a test left behind (its own curls)
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null; done
    local d
    for d in "${HR_DIRS[@]}"; do [ -n "$d" ] && rm -rf "$d"; done
    exit $rc
}
trap hr_cleanup EXIT
trap 'exit 130' INT TERM

# ---- results ----------------------------------------------------------------

HR_SECTION=""
section() {
    HR_SECTION=$1
    echo "== $1"
}

ok() {
    HR_PASS=$((HR_PASS + 1))
    echo "  ok   $1"
}

fail() {
    HR_FAIL=$((HR_FAIL + 1))
    echo "  FAIL $1"
    shift
    local l
    for l in "$@"; do echo "       $l"; done
    if [ -n "$BODY" ]; then echo "       last response: $STATUS ${BODY:0:600}"; fi
}

# A check that is known to fail because of a bug: counted as neither.
skip() {
    echo "  skip $1"
}

hr_done() {
    echo "$HR_PASS passed, $HR_FAIL failed"
    [ "$HR_FAIL" -eq 0 ] && exit 0
    exit 1
}

# known_bug NAME CMD...: a check that fails because of a known bug (see the
# BUG: comment at its call). Failing, it is reported as a skip; passing, as
# ok (the bug is fixed: turn it into a plain check).
known_bug() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$name (known bug no longer reproduces)"; else skip "BUG: $name"; fi
}

# check NAME CMD...: passes when CMD succeeds.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else fail "$name" "command failed: $*"; fi
}

# ---- the server ---------------------------------------------------------------

hr_fresh() {
    DIR=""
}

hr_init() {
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/hr-it.XXXXXX")
    HR_DIRS+=("$DIR")
    cp "$HR_SRC/examples/boards/headroom.yaml" "$DIR/headroom.yaml"
}

# hr_start [ARGS]: start headroomd and wait (up to 10 s) for it to listen.
hr_start() {
    [ -n "$DIR" ] || hr_init
    rm -f "$DIR/ready"
    "$HR_BIN/headroomd" --config "$DIR/headroom.yaml" --db "$DIR/h.db" \
        --listen 127.0.0.1:0 --ready-file "$DIR/ready" --threads 4 "$@" \
        >>"$DIR/log" 2>&1 &
    PID=$!
    local i
    for i in $(seq 1 200); do
        if [ -s "$DIR/ready" ]; then
            URL=$(head -n1 "$DIR/ready")
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    echo "headroomd did not become ready; its log:" >&2
    cat "$DIR/log" >&2
    kill -9 "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
    echo "0 passed, 1 failed"
    HR_FAIL=$((HR_FAIL + 1))
    exit 1
}

# Waits for $PID (at most 20 s, then kill -9); sets HR_EXIT to its status.
hr_reap() {
    local i
    for i in $(seq 1 400); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "headroomd $PID did not stop in 20 s: killing it" >&2
        kill -9 "$PID" 2>/dev/null
    fi
    wait "$PID" 2>/dev/null
    HR_EXIT=$?
    PID=""
}

# hr_stop: graceful stop; the exit status must be 0.
hr_stop() {
    [ -n "$PID" ] || return 0
    kill -TERM "$PID"
    hr_reap
    if [ "$HR_EXIT" -eq 0 ]; then
        ok "SIGTERM: headroomd exits 0"
    else
        fail "SIGTERM: headroomd exits 0" "exit status $HR_EXIT" "log: $(tail -n 5 "$DIR/log")"
    fi
}

hr_kill9() {
    [ -n "$PID" ] || return 0
    kill -9 "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
}

# ---- requests -------------------------------------------------------------------

# api METHOD PATH [BODY] [CURL ARGS...]
api() {
    local method=$1 path=$2
    shift 2
    local body="" has_body=0
    # a third argument that looks like a curl option starts the curl args
    if [ $# -gt 0 ] && ! [[ "$1" =~ ^-[A-Za-z-] ]]; then
        body=$1
        has_body=1
        shift
    fi
    local key=${API_KEY-$HR_SK}
    local args=(-s -S -X "$method" -o "$HR_SCRATCH/body" -D "$HR_SCRATCH/headers"
                -w '%{http_code}' --max-time 20)
    [ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
    if [ "$has_body" = 1 ] && [ -n "$body" ]; then
        args+=(-H "Content-Type: ${API_CT-application/json}" --data-binary "$body")
    fi
    HEADERS=$HR_SCRATCH/headers
    : >"$HR_SCRATCH/body"
    STATUS=$(curl "${args[@]}" "$@" "$URL$path" 2>"$HR_SCRATCH/curlerr")
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(cat "$HR_SCRATCH/body")
}

# json_get PATH [JSON]: prints the value at PATH of JSON (default $BODY).
json_get() {
    local text=${2-$BODY}
    printf '%s' "$text" | python3 -c '
import json, sys
path = sys.argv[1]
try:
    v = json.loads(sys.stdin.read())
except Exception:
    print("<not json>"); sys.exit(0)
for part in path.split(".") if path else []:
    if isinstance(v, list) and part.lstrip("-").isdigit() and -len(v) <= int(part) < len(v):
        v = v[int(part)]
    elif isinstance(v, dict) and part in v:
        v = v[part]
    else:
        print("<missing>"); sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), sort_keys=True))
' "$1"
}

# py EXPR [JSON]: evaluates a Python expression with d = the parsed JSON
# (default $BODY); succeeds when it is true.
py() {
    local text=${2-$BODY}
    printf '%s' "$text" | python3 -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())
except Exception:
    sys.exit(1)
sys.exit(0 if eval(sys.argv[1]) else 1)
' "$1" 2>/dev/null
}

expect_status() {
    local want=$1 name=${2:-}
    if [ "$STATUS" = "$want" ]; then
        ok "${name:+$name: }status $want"
    else
        fail "${name:+$name: }status $want" "got $STATUS"
    fi
}

expect_json() {
    local path=$1 want=$2 name=${3:-}
    local got
    got=$(json_get "$path")
    if [ "$got" = "$want" ]; then
        ok "${name:+$name: }$path = $want"
    else
        fail "${name:+$name: }$path = $want" "got: $got"
    fi
}

expect_py() {
    local expr=$1 name=${2:-$1}
    if py "$expr"; then ok "$name"; else fail "$name" "false: $expr"; fi
}

# expect_error STATUS CODE [NAME]: the status and a JSON error body
# {"error":{"code":CODE,"message":"..."}} with a non-empty message.
expect_error() {
    local want=$1 code=$2 name=${3:-}
    local label="${name:+$name: }$want $code"
    if [ "$STATUS" != "$want" ]; then
        fail "$label" "status $STATUS"
    elif ! py "isinstance(d.get('error'), dict) and d['error'].get('code') == '$code' and isinstance(d['error'].get('message'), str) and len(d['error']['message']) > 0"; then
        fail "$label" "not an error body with code $code"
    else
        ok "$label"
    fi
}

# expect_header NAME REGEX: a response header of the last request matches.
expect_header() {
    local name=$1 re=$2
    local line
    line=$(tr -d '\r' <"$HEADERS" | grep -i "^$name:" | head -n1 | sed 's/^[^:]*: *//')
    if [[ "$line" =~ $re ]]; then
        ok "header $name matches /$re/"
    else
        fail "header $name matches /$re/" "got: '$line'"
    fi
}

# ---- identities -----------------------------------------------------------------

# user_hash USER ACCOUNT TS [SECRET]
user_hash() {
    python3 -c '
import hmac, hashlib, sys
print(hmac.new(sys.argv[4].encode(), ("%s.%s.%s" % tuple(sys.argv[1:4])).encode(),
               hashlib.sha256).hexdigest())' "$1" "$2" "$3" "${4:-$HR_IDSECRET}"
}

now_s() { date -u +%s; }

# RFC 3339 time N seconds from now (negative = past).
rfc3339_in() {
    date -u -d "@$(($(date -u +%s) + $1))" +%Y-%m-%dT%H:%M:%SZ
}
