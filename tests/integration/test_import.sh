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

section "usage errors"
env -u HEADROOM_WRITE_KEY "$HR_BIN/headroom" import "$F" >/dev/null 2>&1
check "no write key: exit 2" [ $? -eq 2 ]
"$HR_BIN/headroom" import --url "$URL" --key wrong --restart "$F" >/dev/null 2>&1
check "a wrong write key: exit 1" [ $? -eq 1 ]
hr_stop
hr_done
