#!/usr/bin/env bash
# test_events.sh: Segment-compatible ingestion as a product would use it:
# write-key auth, track/identify/group/batch, dedup by messageId (also
# across kill -9), accounts reached through context.groupId, properties
# and group membership, meters feeding features in /v1/check, late events
# in their own period, partial batches, and the usage/events reads.
. "$(dirname "$0")/lib.sh"

export HEADROOM_WRITE_KEY=wk_test_integration
WK_AUTH="Authorization: Basic $(printf '%s:' "$HEADROOM_WRITE_KEY" | base64)"
seg() { # seg PATH BODY: a Segment call with the write key (no bearer key)
    API_KEY= api POST "$1" "$2" -H "$WK_AUTH"
}
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)

hr_start
section "accounts and membership"
api PUT /v1/accounts/acme '{"name":"Acme","plan":"free"}'
expect_status 201
seg /v1/group '{"userId":"u1","groupId":"acme","traits":{"industry":"software"}}'
expect_status 200
expect_json accepted 1
api GET /v1/accounts/acme
expect_json traits.industry software
expect_json users 1
seg /v1/group '{"userId":"u9","groupId":"newco","traits":{"name":"New Co"}}'
expect_status 200
api GET /v1/accounts/newco
expect_status 200
expect_json name "New Co"
expect_json plan free

section "auth and validation"
API_KEY= api POST /v1/track '{"userId":"u1","event":"API Called"}'
expect_error 401 unauthorized
API_KEY= api POST /v1/track '{"userId":"u1","event":"API Called"}' -H "Authorization: Basic $(printf 'wrong:' | base64)"
expect_error 401 unauthorized
API_KEY= api POST /v1/track '{"userId":"u1","event":"API Called","writeKey":"wk_test_integration","messageId":"wk-body"}'
expect_status 200 "writeKey in the body"
seg /v1/track '{"event":"API Called"}'
expect_error 400 invalid_request
seg /v1/track '{"userId":"u1"}'
expect_error 400 invalid_request
seg /v1/track '{"userId":"u1","event":"E","timestamp":"2099-01-01T00:00:00Z"}'
expect_error 400 invalid_request
big=$(python3 -c 'print("x"*40000)')
seg /v1/track "{\"userId\":\"u1\",\"event\":\"E\",\"properties\":{\"p\":\"$big\"}}"
expect_error 413 payload_too_large

section "track feeds meters and the decision"
for i in 1 2 3; do
    seg /v1/track "{\"userId\":\"u1\",\"event\":\"API Called\",\"messageId\":\"m$i\",\"context\":{\"groupId\":\"acme\"}}"
    expect_status 200
done
# the same messageId again: counted once
seg /v1/track '{"userId":"u1","event":"API Called","messageId":"m1","context":{"groupId":"acme"}}'
expect_json duplicates 1
api POST /v1/check '{"account":"acme","feature":"api_calls","quantity":1}'
expect_json usage 4 "3 tracked + the writeKey one (u1 belongs to acme)"
# properties.accountId, and membership (u1 -> acme) without any account
seg /v1/track '{"userId":"u1","event":"API Called","messageId":"m4"}'
seg /v1/track '{"userId":"zz","event":"API Called","messageId":"m5","properties":{"accountId":"acme"}}'
api POST /v1/check '{"account":"acme","feature":"api_calls"}'
expect_json usage 6
# a board-created event feeds the boards limit through its lifetime meter
seg /v1/batch "{\"batch\":[
  {\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Board Created\",\"messageId\":\"b1\"},
  {\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Board Created\",\"messageId\":\"b2\"},
  {\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Board Created\",\"messageId\":\"b3\"},
  {\"type\":\"track\",\"event\":\"Board Created\"},
  {\"type\":\"alias\",\"userId\":\"u1\"}
]}"
expect_status 200 "a batch with bad messages keeps the good ones"
expect_json accepted 3
expect_json rejected 2
expect_json errors.0.index 3
expect_json errors.1.index 4
api POST /v1/check '{"account":"acme","feature":"boards","quantity":1}'
expect_json allowed false
expect_json reason limit_reached
expect_json usage 3
expect_json upgrade.addon extra_boards

section "late events land in their own period"
seg /v1/track '{"userId":"u1","event":"API Called","messageId":"late1","timestamp":"2026-01-15T10:00:00Z","context":{"groupId":"acme"}}'
expect_status 200
api POST /v1/check '{"account":"acme","feature":"api_calls"}'
expect_json usage 6 "the January event is not this month's"
api GET "/v1/accounts/acme/usage?meter=api_calls&from=2026-01-01T00:00:00Z"
expect_status 200
expect_json current 6
expect_py "d['points'][0]['period_start'].startswith('2026-01-01') and d['points'][0]['value'] == 1"
api GET "/v1/accounts/acme/events?limit=2"
expect_status 200
expect_py "len(d['events']) == 2 and d['events'][0]['messageId'] == 'late1'"

section "unique and sum meters"
seg /v1/batch '{"batch":[
  {"type":"track","userId":"a","event":"Export Finished","properties":{"rows":1500},"context":{"groupId":"acme"}},
  {"type":"track","userId":"b","event":"Export Finished","properties":{"rows":10},"context":{"groupId":"acme"}},
  {"type":"track","userId":"a","event":"Export Finished","properties":{"rows":5},"context":{"groupId":"acme"}}
]}'
expect_json accepted 3
api GET "/v1/accounts/acme/usage?meter=export_rows"
expect_json current 1515
api GET "/v1/accounts/acme/usage?meter=big_exports"
expect_json current 1
api GET "/v1/accounts/acme/usage?meter=active_users"
expect_py "d['current'] >= 3"
api GET /v1/accounts/acme/entitlements
expect_json meters.export_rows.value 1515 "entitlements list every meter's current value"
expect_json meters.board_count.resets_at null "a lifetime meter never resets"
expect_py "d['meters']['api_calls']['resets_at'].endswith('-01T00:00:00Z')"

section "a premium feature denied is recorded"
api POST /v1/check '{"account":"acme","feature":"private_boards","user":"u1"}'
expect_json reason not_in_plan
sleep 1.5
api GET "/v1/accounts/acme/events?limit=5"
expect_py "any(e.get('event') == 'headroom.feature_denied' and e['properties']['feature'] == 'private_boards' and e.get('userId') == 'u1' for e in d['events'])" \
    "headroom.feature_denied reaches the event log within a second"

section "configured usage thresholds"
# usage_thresholds in the file, picked up by SIGHUP: 2 of 3 seats crosses 50%, not 80%
reloads=$(grep -c "catalog reloaded" "$DIR/log" || true)
sed -i '1i usage_thresholds: [0.5, 1.0]' "$DIR/headroom.yaml"
kill -HUP "$PID"
for i in $(seq 1 100); do
    [ "$(grep -c "catalog reloaded" "$DIR/log" || true)" -gt "$reloads" ] && break
    sleep 0.05
done
check "the catalog with usage_thresholds was reloaded" [ "$(grep -c "catalog reloaded" "$DIR/log")" -gt "$reloads" ]
api PUT /v1/accounts/thr '{"plan":"free"}'
expect_status 201
api POST /v1/accounts/thr/usage '{"feature":"seats","set":2}'
expect_status 200
api GET "/v1/accounts/thr/events?limit=10"
expect_py "[e['properties']['threshold'] for e in d['events'] if e.get('event') == 'headroom.usage_threshold'] == [0.5]" \
    "one headroom.usage_threshold, at the configured 50%"
cat >"$DIR/bad-thr.yaml" <<'YAML'
usage_thresholds: [0.8, 0.5]
features:
  seats: {type: limit, thresholds: 80%}
plans:
  free: {entitlements: {seats: 3}}
YAML
"$HR_BIN/headroom" validate "$DIR/bad-thr.yaml" >"$DIR/out" 2>&1
check "validate refuses bad thresholds" test $? -ne 0
check "descending list, at its position" grep -q "bad-thr.yaml:1:25: usage_thresholds must be in ascending order" "$DIR/out"
check "not a list, at its position" grep -q "bad-thr.yaml:3:36: expected a list of fractions for thresholds" "$DIR/out"

section "usage series at a coarser granularity"
api PUT /v1/accounts/globex '{"plan":"free"}'
expect_status 201
seg /v1/batch '{"batch":[
  {"type":"track","userId":"d1","event":"Seen","timestamp":"2026-11-02T10:00:00Z","context":{"groupId":"globex"}},
  {"type":"track","userId":"d2","event":"Seen","timestamp":"2026-11-03T10:00:00Z","context":{"groupId":"globex"}},
  {"type":"track","userId":"d1","event":"Seen","timestamp":"2026-11-04T10:00:00Z","context":{"groupId":"globex"}},
  {"type":"track","userId":"d3","event":"Seen","timestamp":"2026-11-10T10:00:00Z","context":{"groupId":"globex"}}]}'
expect_status 200
api GET "/v1/accounts/globex/usage?meter=daily_active&from=2026-11-01T00:00:00Z&to=2026-11-15T00:00:00Z"
expect_py "[p['value'] for p in d['points']] == [1, 1, 1, 1]" "one point a day"
api GET "/v1/accounts/globex/usage?meter=daily_active&from=2026-11-01T00:00:00Z&to=2026-11-15T00:00:00Z&granularity=week"
expect_py "[(p['period_start'][:10], p['value']) for p in d['points']] == [('2026-11-02', 2), ('2026-11-09', 1)]" \
    "weeks count distinct users (d1 twice in one week counts once)"
api GET "/v1/accounts/globex/usage?meter=api_calls&granularity=day"
expect_error 400 invalid_request

section "kill -9: acknowledged events stay counted exactly once"
hr_kill9
hr_start
api POST /v1/check '{"account":"acme","feature":"api_calls"}'
expect_json usage 6
api POST /v1/check '{"account":"acme","feature":"boards","quantity":0}'
expect_json usage 3
seg /v1/track '{"userId":"u1","event":"API Called","messageId":"m3","context":{"groupId":"acme"}}'
expect_json duplicates 1 "dedup survives the restart"
seg /v1/track '{"userId":"u1","event":"API Called","messageId":"m6"}'
expect_json accepted 1 "membership survives the restart"
api POST /v1/check '{"account":"acme","feature":"api_calls"}'
expect_json usage 7
section "kill -9 at a random moment during ingestion"
api PUT /v1/accounts/crash '{"plan":"business"}'
expect_status 201
sent=$HR_SCRATCH/sent; acked=$HR_SCRATCH/acked
: >"$sent"; : >"$acked"
(
    for b in $(seq 1 400); do
        body="{\"batch\":["
        for i in $(seq 1 25); do
            [ "$i" -gt 1 ] && body="$body,"
            body="$body{\"type\":\"track\",\"userId\":\"c\",\"event\":\"API Called\",\"messageId\":\"crash-$b-$i\",\"context\":{\"groupId\":\"crash\"}}"
        done
        body="$body]}"
        echo "$body" >>"$sent"
        code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "$WK_AUTH" \
               -H 'Content-Type: application/json' -d "$body" "$URL/v1/batch") || break
        [ "$code" = 200 ] && echo "$b" >>"$acked" || break
    done
) &
loader=$!
sleep "0.$(( RANDOM % 8 + 2 ))"
kill -9 "$PID"
wait "$PID" 2>/dev/null
wait "$loader" 2>/dev/null
n_acked=$(( $(wc -l <"$acked") * 25 ))
n_sent=$(( $(wc -l <"$sent") * 25 ))
echo "       $n_acked of $n_sent events acknowledged before the kill"
check "some batches were acknowledged before the kill" [ "$n_acked" -gt 0 ]
hr_start
api POST /v1/check '{"account":"crash","feature":"api_calls","quantity":0}'
got=$(json_get usage)
check "every acknowledged event is counted ($got >= $n_acked)" [ "$got" -ge "$n_acked" ]
check "nothing is counted that was not sent ($got <= $n_sent)" [ "$got" -le "$n_sent" ]
# send everything again: acknowledged (and committed) events are duplicates now
while read -r body; do
    curl -s -o /dev/null -H "$WK_AUTH" -H 'Content-Type: application/json' -d "$body" "$URL/v1/batch"
done <"$sent"
api POST /v1/check '{"account":"crash","feature":"api_calls","quantity":0}'
expect_json usage "$n_sent" "after resending all: each messageId counted exactly once"
hr_stop

section "--dedup-memory bounds the messageId index: the oldest ids go first"
hr_start --dedup-memory 1
api PUT /v1/accounts/bounded '{"plan":"business"}'
expect_status 201
python3 - "$HR_SCRATCH" <<'PY'
import json, sys
for b in range(20):  # 20 x 2,000 ids: more than 1 MiB holds (~22,900)
    msgs = [{"type": "track", "userId": "b", "event": "API Called", "messageId": f"bound-{b}-{i}",
             "context": {"groupId": "bounded"}} for i in range(2000)]
    open(f"{sys.argv[1]}/bound-{b}.json", "w").write(json.dumps({"batch": msgs}))
PY
for b in $(seq 0 19); do
    curl -s -o /dev/null -H "$WK_AUTH" -H 'Content-Type: application/json' \
        --data-binary @"$HR_SCRATCH/bound-$b.json" "$URL/v1/batch"
done
api GET /metrics
evicted=$(sed -n 's/^headroom_dedup_evicted_total //p' <<<"$BODY")
bytes=$(sed -n 's/^headroom_dedup_bytes //p' <<<"$BODY")
check "ids were dropped to stay within the bound ($evicted)" [ "${evicted:-0}" -gt 0 ]
check "the index stays within 1 MiB ($bytes bytes)" [ "${bytes:-99999999}" -le 1048576 ]
check "the window it covers is reported as shorter than 7 days" \
    grep -Eq '^headroom_dedup_window_seconds [0-9]{1,5}$' <<<"$BODY"
check "the shortened window is logged" grep -q "at its memory bound" "$DIR/log"
curl -s -o "$HR_SCRATCH/retry.json" -H "$WK_AUTH" -H 'Content-Type: application/json' \
    --data-binary @"$HR_SCRATCH/bound-19.json" "$URL/v1/batch"
check "a retry of the newest batch is still recognised" \
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["duplicates"] != 2000)' "$HR_SCRATCH/retry.json"
api POST /v1/check '{"account":"bounded","feature":"api_calls","quantity":0}'
expect_json usage 40000 "each of the 40,000 counted once"
hr_stop
hr_done
