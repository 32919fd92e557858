#!/usr/bin/env bash
# test_import.sh: `headroom import FILE.jsonl` against a running headroomd:
# bad lines reported with their numbers and skipped, the rest counted;
# an import killed half way resumes from its state file; re-importing the
# same file counts nothing twice.
. "$(dirname "$0")/lib.sh"

export HEADROOM_WRITE_KEY=wk_test_import
hr_start
api PUT /v1/accounts/acme '{"plan":"business"}'
expect_status 201
F=$HR_SCRATCH/events.jsonl
python3 - "$F" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        # no messageId: the import derives a stable one per line
        f.write(json.dumps({"type": "track", "userId": "u%d" % (i % 9), "event": "API Called",
                            "timestamp": "2026-11-%02dT10:00:00Z" % (1 + i % 20),
                            "context": {"groupId": "acme"}}) + "\n")
        if i == 100:
            f.write("this is not json\n")          # line 102
        if i == 200:
            f.write(json.dumps({"event": "x"}) + "\n")  # line 203: no userId
PY
imp() { "$HR_BIN/headroom" import --url "$URL" --key "$HEADROOM_WRITE_KEY" "$@"; }

section "bad lines are reported and skipped"
imp "$F" >"$HR_SCRATCH/out" 2>"$HR_SCRATCH/err"
check "import exits 0" [ $? -eq 0 ]
check "line 102 is reported" grep -q "events.jsonl:102: malformed JSON" "$HR_SCRATCH/err"
check "line 203 is reported" grep -q "events.jsonl:203: .*userId" "$HR_SCRATCH/err"
check "the summary counts them" grep -q "imported 20000 events .* 2 bad lines skipped" "$HR_SCRATCH/out"
api GET "/v1/accounts/acme/usage?meter=api_calls"
expect_json current 20000

section "importing again counts nothing twice"
imp --restart "$F" >"$HR_SCRATCH/out" 2>/dev/null
check "all already there" grep -q "imported 0 events (20000 already there" "$HR_SCRATCH/out"
api GET "/v1/accounts/acme/usage?meter=api_calls"
expect_json current 20000

section "an interrupted import resumes"
api PUT /v1/accounts/globex '{"plan":"business"}'
G=$HR_SCRATCH/globex.jsonl
sed 's/"groupId": "acme"/"groupId": "globex"/' "$F" >"$G"
imp "$G" >/dev/null 2>&1 &
ipid=$!
for _ in $(seq 1 100); do [ -s "$G.import-state" ] && break; sleep 0.02; done
kill -9 "$ipid" 2>/dev/null
wait "$ipid" 2>/dev/null
check "a state file was written before the kill" [ -s "$G.import-state" ]
imp "$G" >"$HR_SCRATCH/out" 2>"$HR_SCRATCH/err"
check "the second run resumes" grep -q "resuming at line" "$HR_SCRATCH/err"
api GET "/v1/accounts/globex/usage?meter=api_calls"
expect_json current 20000

section "stdin, CRLF line ends, no type, an oversized line"
python3 - "$HR_SCRATCH/odd.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w", newline="") as f:
    for i in range(10):  # no "type": analytics exports leave it out
        f.write(json.dumps({"userId": "o%d" % i, "event": "API Called", "messageId": "odd-%d" % i,
                            "timestamp": "2026-11-02T10:00:00Z", "context": {"groupId": "initech"}}) + "\r\n")
    f.write(json.dumps({"userId": "big", "event": "API Called", "context": {"groupId": "initech"},
                        "properties": {"pad": "x" * 40000}}) + "\n")   # line 11: over 32 KB
    f.write("\n")                                                     # line 12: blank, skipped
    f.write(json.dumps({"userId": "last", "event": "API Called", "messageId": "odd-last",
                        "context": {"groupId": "initech"}}))          # line 13: no newline
PY
api PUT /v1/accounts/initech '{"plan":"business"}'
imp - <"$HR_SCRATCH/odd.jsonl" >"$HR_SCRATCH/out" 2>"$HR_SCRATCH/err"
check "stdin import exits 0" [ $? -eq 0 ]
check "the oversized line is reported" grep -q "stdin:11: .*32 KB" "$HR_SCRATCH/err"
check "11 counted, 1 bad" grep -q "imported 11 events (0 already there, 1 bad lines skipped) from 13 lines" "$HR_SCRATCH/out"
api GET "/v1/accounts/initech/usage?meter=api_calls"
expect_json current 11

section "POST /v1/import directly"
ndjson() { # $1: first line number header (or ""), body on stdin
    local h=()
    [ -n "$1" ] && h=(-H "X-Headroom-Import-Line: $1")
    curl -s -o "$HR_SCRATCH/body" -w '%{http_code}' -u "$HEADROOM_WRITE_KEY:" \
        -H 'Content-Type: application/x-ndjson' "${h[@]}" --data-binary @- "$URL/v1/import"
}
code=$(printf '{"userId":"d1","event":"API Called","context":{"groupId":"initech"}}\n[1]\n{"type":"track"}\n' | ndjson 41)
check "200 with bad lines" [ "$code" = 200 ]
check "line 42 is not an object" grep -q '"line":42,"message":"a line must be a JSON object"' "$HR_SCRATCH/body"
check "line 43 misses userId" grep -q '"line":43,' "$HR_SCRATCH/body"
check "one accepted" grep -q '"accepted":1,' "$HR_SCRATCH/body"
code=$(printf '{"userId":"d1","event":"API Called","context":{"groupId":"initech"}}\n' | ndjson 41)
check "the same line at the same number: a duplicate" grep -q '"accepted":0,"duplicates":1' "$HR_SCRATCH/body"
code=$(printf '{"userId":"d1","event":"API Called","context":{"groupId":"initech"}}\n' | ndjson 7)
check "at another line number: a new event" grep -q '"accepted":1,"duplicates":0' "$HR_SCRATCH/body"
code=$(printf '{}\n' | ndjson 0)
check "a bad line number: 400" [ "$code" = 400 ]
code=$(printf '{}\n' | ndjson 9223372036854775807)
check "a line number too large: 400" [ "$code" = 400 ]
expect_error_body() { grep -q "\"code\":\"$1\"" "$HR_SCRATCH/body"; }
check "... invalid_request" expect_error_body invalid_request
code=$(curl -s -o "$HR_SCRATCH/body" -w '%{http_code}' -u "$HEADROOM_WRITE_KEY:" \
    -H 'Content-Type: application/json' --data-binary '{}' "$URL/v1/import")
check "JSON instead of JSON lines: 415" [ "$code" = 415 ]
code=$(printf '{}\n' | curl -s -o "$HR_SCRATCH/body" -w '%{http_code}' -u "wrong:" \
    -H 'Content-Type: application/x-ndjson' --data-binary @- "$URL/v1/import")
check "a wrong write key: 401" [ "$code" = 401 ]
check "... unauthorized" expect_error_body unauthorized
api GET "/v1/accounts/initech/usage?meter=api_calls"
expect_json current 13

section "usage errors"
env -u HEADROOM_WRITE_KEY "$HR_BIN/headroom" import "$F" >/dev/null 2>&1
check "no write key: exit 2" [ $? -eq 2 ]
"$HR_BIN/headroom" import --url "$URL" --key wrong --restart "$F" >/dev/null 2>&1
check "a wrong write key: exit 1" [ $? -eq 1 ]
hr_stop
hr_done
