#!/usr/bin/env bash
# test_durability.sh: what headroomd acknowledged survives kill -9; SIGTERM
# under load loses nothing acknowledged; SIGHUP and PUT /v1/catalog swap the
# catalog (and refuse bad ones); metrics and health; the CLI's check.
source "$(dirname "$0")/lib.sh"

hr_start

check_req() { # check_req ACCOUNT FEATURE [QTY]
    api POST /v1/check "{\"account\":\"$1\",\"feature\":\"$2\",\"quantity\":${3:-1}}"
}

# snapshot FILE: everything observable about the test accounts, as JSON lines.
snapshot() {
    local out=$1 a f
    : >"$out"
    for a in acme globex initech; do
        api GET "/v1/accounts/$a"
        echo "account $a $STATUS $BODY" >>"$out"
        api GET "/v1/accounts/$a/users"
        echo "users $a $STATUS $BODY" >>"$out"
        api GET "/v1/accounts/$a/entitlements"
        echo "entitlements $a $STATUS $BODY" >>"$out"
        for f in boards private_boards seats api_calls sso storage_gb; do
            check_req "$a" "$f" 2
            echo "check $a $f $STATUS $BODY" >>"$out"
        done
    done
    api GET "/v1/accounts?limit=10"
    echo "list $STATUS $BODY" >>"$out"
}

section "write, kill -9, read back"
api PUT /v1/accounts/acme "{\"name\":\"Acme\",\"plan\":\"pro\",\"owner\":\"u1\",\"renews_at\":\"$(rfc3339_in 864000)\",\"addons\":{\"extra_boards\":2},\"traits\":{\"region\":\"eu\",\"size\":40}}"
expect_status 201 "acme on pro with add-ons"
api PUT /v1/accounts/globex '{"name":"Globex","plan":"free","interval":"year"}'
expect_status 201 "globex on free"
api PUT /v1/accounts/initech '{"name":"Initech","plan":"pro","plan_version":1}'
expect_status 201 "initech on pro v1"
api PUT /v1/accounts/acme/users/u1 '{"role":"admin","traits":{"title":"CTO"}}'
expect_status 201 "user u1"
api PUT /v1/accounts/acme/users/u2 '{"role":"member","seat_type":"viewer"}'
expect_status 201 "user u2"
api PUT /v1/accounts/globex/users/g1 '{"role":"admin"}'
expect_status 201 "user g1"
api POST /v1/accounts/acme/usage '{"feature":"boards","set":42}'
expect_status 200 "usage boards set 42"
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":17}'
expect_status 200 "usage api_calls +17"
api POST /v1/accounts/globex/usage '{"feature":"storage_gb","set":3}'
expect_status 200 "usage storage_gb set 3"
api POST /v1/accounts/acme/usage '{"feature":"storage_gb","set":9}'
expect_status 200 "usage storage_gb set 9"
api POST /v1/accounts/globex/usage '{"feature":"boards","increment":2}' -H 'Idempotency-Key: idem-1'
expect_status 200 "usage with an Idempotency-Key"
IDEM_BODY=$BODY
api PUT /v1/accounts/acme/overrides/seats "{\"value\":25,\"expires_at\":\"$(rfc3339_in 86400)\"}"
expect_status 200 "override seats with an expiry"
api PUT /v1/accounts/globex/overrides/sso '{"value":true}'
expect_status 200 "override sso"
api POST /v1/accounts/globex/trials/private_boards
expect_status 201 "feature trial"
api POST /v1/accounts/globex/trials '{"plan":"pro"}'
expect_status 201 "plan trial"
# updates of existing accounts (these once went to the store under a garbage id)
api PATCH /v1/accounts/acme '{"name":"Acme Corp"}'
expect_status 200 "PATCH acme"
api PUT /v1/accounts/initech '{"name":"Initech Inc","plan":"pro","addons":{"extra_seats":1}}'
expect_status 200 "re-PUT initech"
expect_json plan_version 1 "initech stays on v1"
snapshot "$DIR/before"
hr_kill9
hr_start
snapshot "$DIR/after"
check "every account, user list, entitlement and decision reads back identically" \
    cmp -s "$DIR/before" "$DIR/after"
cmp -s "$DIR/before" "$DIR/after" || diff "$DIR/before" "$DIR/after" | head -n 20
api POST /v1/accounts/globex/usage '{"feature":"boards","increment":2}' -H 'Idempotency-Key: idem-1'
expect_status 200 "the idempotent retry after the restart"
check "... returns the first answer" [ "$BODY" = "$IDEM_BODY" ]
api POST /v1/accounts/globex/usage '{"feature":"boards","increment":3}' -H 'Idempotency-Key: idem-1'
expect_error 409 conflict "the key with another body after the restart"
check_req globex boards 0
expect_json usage 2 "the key still counts once"
api POST /v1/accounts/globex/trials '{"plan":"pro"}'
expect_error 409 conflict "the plan trial stays used"
api POST /v1/accounts/globex/trials/private_boards
expect_error 409 conflict "the feature trial stays used"

section "deletions survive kill -9"
api PUT /v1/accounts/gone '{"name":"Gone","plan":"free"}'
api PUT /v1/accounts/gone/users/x1 '{"role":"admin"}'
api POST /v1/accounts/gone/usage '{"feature":"boards","set":3}'
api PUT /v1/accounts/gone/overrides/boards '{"value":9}'
api POST /v1/accounts/gone/trials/private_boards
api POST /v1/accounts/gone/trials '{"plan":"pro"}'
expect_status 201 "setup: gone with users, usage, override and trials"
api DELETE /v1/accounts/gone
expect_status 204 "delete gone"
api PUT /v1/accounts/gone '{"name":"Gone again","plan":"free"}'
expect_status 201 "re-create gone"
api DELETE /v1/accounts/acme/users/u2
expect_status 204 "delete user u2"
api DELETE /v1/accounts/globex/overrides/sso
expect_status 204 "delete globex's sso override"
hr_kill9
hr_start
api GET /v1/accounts/gone
expect_json name "Gone again" "after kill -9"
expect_json users 0 "the re-created account has no old users"
expect_py "d['overrides'] == [] and d['feature_trials'] == [] and d['trial'] is None and not d['plan_trial_used']" \
    "the re-created account has no old overrides or trials"
check_req gone boards 1
expect_json usage 0 "the re-created account has no old usage"
api GET /v1/accounts/acme/users/u2
expect_error 404 not_found "the deleted user stays deleted"
check_req globex sso
expect_json allowed false "the deleted override stays deleted"

section "headroom check --db and --url"
check_req acme boards 1
SERVER_ALLOWED=$BODY
check_req acme storage_gb 5
SERVER_OVERAGE=$BODY
expect_json reason overage "setup: acme storage_gb 5 is overage"
check_req acme boards 500
SERVER_DENIED=$BODY
"$HR_BIN/headroom" check --url "$URL" --key "$HR_SK" acme boards 1 >"$DIR/cli.out" 2>&1
check "check --url: allowed exits 0" [ $? = 0 ]
check "... and prints the server's decision" py "d == json.loads(open('$DIR/cli.out').read())" "$SERVER_ALLOWED"
"$HR_BIN/headroom" check --url "$URL" --key "$HR_SK" acme boards 500 >"$DIR/cli.out" 2>&1
check "check --url: not allowed exits 3" [ $? = 3 ]
"$HR_BIN/headroom" check --url "$URL" --key "$HR_SK" nosuch boards >"$DIR/cli.out" 2>&1
check "check --url: an unknown account exits 3" [ $? = 3 ]
"$HR_BIN/headroom" check --url "$URL" --key sk_test_wrong_key_000 acme boards >"$DIR/cli.out" 2>&1
check "check --url with a wrong key exits 1" [ $? = 1 ]
hr_stop
"$HR_BIN/headroom" check --db "$DIR/h.db" --config "$DIR/headroom.yaml" acme boards 1 >"$DIR/cli.out" 2>&1
check "check --db: allowed exits 0" [ $? = 0 ]
check "... with the server's decision" py "d == json.loads(open('$DIR/cli.out').read())" "$SERVER_ALLOWED"
"$HR_BIN/headroom" check --db "$DIR/h.db" --config "$DIR/headroom.yaml" acme storage_gb 5 >"$DIR/cli.out" 2>&1
check "check --db: overage exits 0" [ $? = 0 ]
check "... with the server's decision" py "d == json.loads(open('$DIR/cli.out').read())" "$SERVER_OVERAGE"
"$HR_BIN/headroom" check --db "$DIR/h.db" --config "$DIR/headroom.yaml" acme boards 500 >"$DIR/cli.out" 2>&1
check "check --db: not allowed exits 3" [ $? = 3 ]
check "... with the server's decision" py "d == json.loads(open('$DIR/cli.out').read())" "$SERVER_DENIED"
"$HR_BIN/headroom" check --url "$URL" --key "$HR_SK" acme boards 1 >"$DIR/cli.out" 2>&1
check "check --url against a stopped server exits 1" [ $? = 1 ]
hr_start

section "200 acknowledged increments, then kill -9"
api PUT /v1/accounts/counter '{"plan":"free"}'
expect_status 201 "account counter"
ACKED=0
for i in $(seq 1 200); do
    api POST /v1/accounts/counter/usage '{"feature":"boards","increment":1}'
    [ "$STATUS" = 200 ] && ACKED=$((ACKED + 1))
done
hr_kill9
check "all 200 increments acknowledged" [ "$ACKED" = 200 ]
hr_start
check_req counter boards 0
expect_json usage 200 "after kill -9 right after the last ack"

section "SIGTERM during a burst"
api PUT /v1/accounts/burst '{"plan":"free"}'
expect_status 201 "account burst"
burst_worker() { # burst_worker N: 40 increments with keys w<N>-<i>; logs "key status body"
    local w=$1 i code
    for i in $(seq 1 40); do
        code=$(curl -s -o "$DIR/burst-$w-$i.body" -w '%{http_code}' --max-time 10 \
            -H "Authorization: Bearer $HR_SK" -H 'Content-Type: application/json' \
            -H "Idempotency-Key: w$w-$i" -X POST \
            --data-binary '{"feature":"boards","increment":1}' \
            "$URL/v1/accounts/burst/usage" 2>/dev/null)
        echo "w$w-$i ${code:-000}" >>"$DIR/burst-$w.log"
    done
}
WORKERS=()
for w in 1 2 3 4 5 6; do
    burst_worker "$w" &
    WORKERS+=($!)
done
# stop once the burst is under way
for i in $(seq 1 100); do
    [ "$(cat "$DIR"/burst-*.log 2>/dev/null | wc -l)" -ge 30 ] && break
    sleep 0.02
done
hr_stop
for p in "${WORKERS[@]}"; do wait "$p"; done
cat "$DIR"/burst-*.log >"$DIR/burst.all"
N_OK=$(grep -c ' 2[0-9][0-9]$' "$DIR/burst.all")
N_SENT=$(wc -l <"$DIR/burst.all")
echo "       $N_OK of $N_SENT requests acknowledged before the stop"
check "some requests were acknowledged before SIGTERM" [ "$N_OK" -gt 0 ]
check "some requests were refused after SIGTERM (the stop hit the burst)" [ "$N_OK" -lt "$N_SENT" ]
hr_start
check_req burst boards 0
USAGE=$(json_get usage)
check "usage ($USAGE) counts every acknowledged increment ($N_OK)" [ "$USAGE" -ge "$N_OK" ] 2>/dev/null
check "usage ($USAGE) counts no more than were sent ($N_SENT)" [ "$USAGE" -le "$N_SENT" ] 2>/dev/null
# Each acknowledged request, retried with its key, must get its first answer
# back: the increment and its idempotency record were stored.
MISSING=0
while read -r key code; do
    case $code in 2??) ;; *) continue ;; esac
    w=${key%%-*}
    w=${w#w}
    i=${key#*-}
    api POST /v1/accounts/burst/usage '{"feature":"boards","increment":1}' -H "Idempotency-Key: $key"
    if [ "$STATUS" != 200 ] || [ "$BODY" != "$(cat "$DIR/burst-$w-$i.body")" ]; then
        MISSING=$((MISSING + 1))
        echo "       $key: retry got $STATUS $BODY"
    fi
done <"$DIR/burst.all"
check "every acknowledged request is recorded with its answer" [ "$MISSING" = 0 ]
check_req burst boards 0
expect_json usage "$USAGE" "the retries changed nothing"

section "SIGHUP reloads the catalog file"
api PUT /v1/accounts/hup '{"plan":"free"}'
check_req hup boards 1
expect_json limit 3 "free boards before"
sed -i 's/^      boards: 3$/      boards: 5/' "$DIR/headroom.yaml"
check "the test edited free's boards" grep -q '^      boards: 5$' "$DIR/headroom.yaml"
kill -HUP "$PID"
for i in $(seq 1 100); do
    check_req hup boards 1
    [ "$(json_get limit)" = 5 ] && break
    sleep 0.05
done
expect_json limit 5 "free boards after SIGHUP"
check "the log says the catalog was reloaded" grep -q "catalog reloaded" "$DIR/log"

cp "$DIR/headroom.yaml" "$DIR/good.yaml"
sed -i 's/^      boards: 5$/      boards: lots/' "$DIR/headroom.yaml"
LINE=$(grep -n '^      boards: lots$' "$DIR/headroom.yaml" | cut -d: -f1)
kill -HUP "$PID"
for i in $(seq 1 100); do
    grep -q "reload failed" "$DIR/log" && break
    sleep 0.05
done
check "a broken file: the log says the reload failed" grep -q "reload failed, keeping the current catalog" "$DIR/log"
check "... and where: headroom.yaml:$LINE:col" grep -Eq "headroom\.yaml:$LINE:[0-9]+: .*lots" "$DIR/log"
api GET /healthz
expect_status 200 "the server still answers"
check_req hup boards 1
expect_json limit 5 "the old catalog is kept"
api GET /metrics
check "metrics count the failed reload" grep -q '^headroom_catalog_reload_failures_total 1$' <<<"$BODY"
check "metrics count the good reload" grep -q '^headroom_catalog_reloads_total 1$' <<<"$BODY"
cp "$DIR/good.yaml" "$DIR/headroom.yaml"
# the file is older than anything set over the API from here on
touch -d "@$(($(now_s) - 10))" "$DIR/headroom.yaml"

section "PUT /v1/catalog"
api GET /v1/catalog
expect_status 200 "GET /v1/catalog"
expect_header Content-Type '^application/json'
expect_json plans.free.entitlements.boards 5
NEWCAT=$(json_get "" | python3 -c '
import json, sys
d = json.load(sys.stdin)
d["plans"]["free"]["entitlements"]["boards"] = 7
print(json.dumps(d))')
api PUT /v1/catalog "$NEWCAT"
expect_status 200 "PUT a modified catalog"
expect_json plans.free.entitlements.boards 7 "the answer is the new catalog"
check_req hup boards 1
expect_json limit 7 "the new catalog decides"
BADCAT=$(printf '%s' "$NEWCAT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
d["plans"]["free"]["entitlements"]["boards"] = "lots"
d["plans"]["pro"]["entitlements"]["nosuch"] = 1
print(json.dumps(d))')
api PUT /v1/catalog "$BADCAT"
expect_error 422 invalid_catalog "PUT a bad catalog"
expect_py "len(d['error']['details']) == 2" "details lists both problems"
expect_py "all(x['line'] >= 1 and x['column'] >= 1 and x['message'] for x in d['error']['details'])" \
    "each detail has a line, a column and a message"
expect_py "any('lots' in x['message'] for x in d['error']['details']) and any('nosuch' in x['message'] for x in d['error']['details'])" \
    "the details name 'lots' and 'nosuch'"
api PUT /v1/catalog '{"currency":'
expect_error 400 malformed_json "PUT a catalog that is not JSON"
expect_py "'byte 12' in d['error']['message']" "the message names byte 12"
check_req hup boards 1
expect_json limit 7 "the good catalog is kept"
api GET /v1/catalog
CAT_BEFORE=$(json_get "")
hr_stop
hr_start
check_req hup boards 1
expect_json limit 7 "the API catalog survives a restart"
api GET /v1/catalog
check "GET /v1/catalog after the restart is the same" [ "$(json_get "")" = "$CAT_BEFORE" ]
check "the log says it uses the API catalog" grep -q "using the catalog set over the API" "$DIR/log"

# `headroom check --db` starts from the same catalog headroomd would: here the
# one set over the API (limit 7), not the file's.
hr_stop
"$HR_BIN/headroom" check --db "$DIR/h.db" --config "$DIR/headroom.yaml" hup boards 1 >"$DIR/cli.out" 2>&1
check "check --db decides with the catalog set over the API (limit 7)" \
    py "d['limit'] == 7" "$(cat "$DIR/cli.out")"
hr_start

section "metrics and health"
for i in 1 2 3; do check_req hup boards 1; done
api POST /v1/check '{"account":"hup"}'
API_KEY= api GET /metrics
expect_status 200 "GET /metrics without a key"
expect_header Content-Type '^text/plain'
check "headroom_http_requests_total has route=check status=200 (at least 3)" python3 -c '
import re, sys
m = re.search(r"^headroom_http_requests_total\{route=\"check\",status=\"200\"\} (\d+)$", sys.stdin.read(), re.M)
sys.exit(0 if m and int(m.group(1)) >= 3 else 1)' <<<"$BODY"
check "... and route=check status=400" grep -q '^headroom_http_requests_total{route="check",status="400"} 1$' <<<"$BODY"
api GET /v1/accounts?limit=1
TOTAL=$(json_get total)
API_KEY= api GET /metrics
check "headroom_accounts is the number of accounts ($TOTAL)" grep -q "^headroom_accounts $TOTAL\$" <<<"$BODY"
check "the latency histogram is there" grep -q '^headroom_http_request_duration_seconds_count [1-9]' <<<"$BODY"
API_KEY= api GET /healthz
expect_status 200 "/healthz"
expect_json status ok
expect_json accounts "$TOTAL"

hr_stop
hr_done
