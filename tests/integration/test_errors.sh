#!/usr/bin/env bash
# test_errors.sh: every refusal is JSON {"error":{"code","message"}} with the
# right status; keys and browser identities (user_hash); startup refusals;
# `headroom validate`.
source "$(dirname "$0")/lib.sh"

hr_start

api PUT /v1/accounts/acme '{"name":"Acme","plan":"free"}'
expect_status 201 "setup: acme"
api PUT /v1/accounts/globex '{"name":"Globex","plan":"free"}'
expect_status 201 "setup: globex"
api PUT /v1/accounts/acme/users/u1 '{"role":"admin"}'
expect_status 201 "setup: user u1"

section "API keys"
API_KEY= api GET /v1/accounts
expect_error 401 unauthorized "no key"
API_KEY=sk_test_not_the_right_key api GET /v1/accounts
expect_error 401 unauthorized "a wrong secret key"
API_KEY=pk_test_not_the_right_key api POST /v1/check '{"account":"acme","feature":"boards"}'
expect_error 401 unauthorized "a wrong publishable key"
API_KEY= api POST /v1/check '{"account":"acme","feature":"boards"}' -H "Authorization: Basic Zm9vOmJhcg=="
expect_error 401 unauthorized "not a bearer token"
API_KEY= api GET /v1/accounts -H "Authorization: bearer $HR_SK"
expect_status 200 "the Bearer scheme is case-insensitive"
API_KEY=$HR_PK api GET /v1/accounts
expect_error 403 forbidden "pk_ on GET /v1/accounts"
API_KEY=$HR_PK api PUT /v1/accounts/acme '{"name":"x"}'
expect_error 403 forbidden "pk_ on PUT /v1/accounts/{id}"
API_KEY=$HR_PK api POST /v1/accounts/acme/usage '{"feature":"boards","increment":1}'
expect_error 403 forbidden "pk_ on usage"
API_KEY=$HR_PK api GET /v1/catalog
expect_error 403 forbidden "pk_ on GET /v1/catalog"
API_KEY=$HR_PK api POST /v1/accounts/acme/trials '{"plan":"pro"}'
expect_error 403 forbidden "pk_ on a plan trial"
api GET /v1/accounts/acme
expect_json name Acme "nothing above changed acme"
API_KEY= api GET /healthz
expect_status 200 "/healthz needs no key"

section "routing"
api GET /v1/nothing
expect_error 404 not_found "unknown route"
api GET /v1/accounts/acme/nothing/more
expect_error 404 not_found "unknown sub-route"
API_KEY= api GET /nothing
expect_error 404 not_found "unknown route without a key"
api POST /v1/accounts/acme '{}'
expect_error 405 method_not_allowed "POST on an account"
expect_header Allow '^PUT, PATCH, GET, DELETE$'
api GET /v1/check
expect_error 405 method_not_allowed "GET /v1/check"
expect_header Allow '^POST$'
api DELETE /v1/catalog
expect_error 405 method_not_allowed "DELETE /v1/catalog"
expect_header Allow 'GET'
expect_header Allow 'PUT'

section "bodies"
API_CT=text/plain api PUT /v1/accounts/acme '{"name":"x"}'
expect_error 415 unsupported_media_type "text/plain"
API_CT=application/x-www-form-urlencoded api POST /v1/check '{"account":"acme","feature":"boards"}'
expect_error 415 unsupported_media_type "form-encoded"
API_CT="application/json; charset=utf-8" api PUT /v1/accounts/acme '{"name":"Acme"}'
expect_status 200 "application/json with a charset"
api PUT /v1/accounts/acme '{"name":'
expect_error 400 malformed_json "truncated JSON"
expect_json error.message "malformed JSON at byte 8: unexpected end of input"
api PUT /v1/accounts/acme '{"name":"x",,}'
expect_error 400 malformed_json "a doubled comma"
expect_py "'byte 12' in d['error']['message']" "the message names byte 12"
api PUT /v1/accounts/acme '{name:"x"}'
expect_error 400 malformed_json "an unquoted key"
expect_py "'byte 1' in d['error']['message']" "the message names byte 1"
api PUT /v1/accounts/acme '{"name":"x"} trailing'
expect_error 400 malformed_json "data after the value"
expect_py "'byte 13' in d['error']['message']" "the message names byte 13"
api PUT /v1/accounts/acme '{"name":"x",}'
expect_error 400 malformed_json "a trailing comma"
api PUT /v1/accounts/acme "{'name':'x'}"
expect_error 400 malformed_json "single quotes"
api PUT /v1/accounts/acme '{"name":"x" /* comment */}'
expect_error 400 malformed_json "a comment"
api PUT /v1/accounts/acme $'{"name":"\xff"}'
expect_error 400 malformed_json "invalid UTF-8"
# json-c accepts NaN and Infinity even in strict mode; we refuse them.
strict_json() { # Python's json accepts NaN: refuse it
    printf '%s' "$1" | python3 -c '
import json, sys
def no(c): raise ValueError(c)
json.loads(sys.stdin.read(), parse_constant=no)'
}
api PUT /v1/accounts/acme '{"traits":{"n":NaN}}'
expect_error 400 malformed_json "NaN"
api PUT /v1/accounts/acme '{"traits":{"n":-Infinity}}'
expect_error 400 malformed_json "-Infinity"
api PUT /v1/accounts/acme "{'name':'Acme'}"
expect_error 400 malformed_json "single-quoted strings"
api PUT /v1/accounts/acme "{\"name\":\"O'Brien\",\"plan\":\"free\"}"
expect_status 200 "a single quote inside a string is fine"
api GET /v1/accounts/acme
check "GET /v1/accounts/acme is strict JSON (no NaN/Infinity)" strict_json "$BODY"
api PUT /v1/accounts/acme '{"name":"Acme","plan":"free"}'
expect_status 200 "reset acme"
api PUT /v1/accounts/acme ''
expect_error 400 invalid_request "a PUT without a body"
api PUT /v1/accounts/acme '[1,2]'
expect_error 400 invalid_request "an array instead of an object"
api PUT /v1/accounts/acme '{"name":"Acme","colour":"red"}'
expect_error 400 invalid_request "an unknown field"
expect_py "'colour' in d['error']['message']" "the message names the field"
api PUT /v1/accounts/acme/users/u1 '{"role":"admin","age":3}'
expect_error 400 invalid_request "an unknown user field"
api POST /v1/accounts/acme/usage '{"feature":"boards","increment":1,"extra":true}'
expect_error 400 invalid_request "an unknown usage field"
api POST /v1/accounts/acme/usage '{"feature":"boards","set":1,"increment":1}'
expect_error 400 invalid_request "set and increment together"
api POST /v1/accounts/acme/usage '{"feature":"boards","increment":"1"}'
expect_error 400 invalid_request "a string increment"
api POST /v1/accounts/acme/usage '{"feature":"boards","set":-1}'
expect_error 400 invalid_request "a negative set"
api PUT /v1/accounts/acme/overrides/seats '{"value":20,"until":"x"}'
expect_error 400 invalid_request "an unknown override field"
api PUT /v1/accounts/acme/overrides/seats '{"value":20,"expires_at":"next tuesday"}'
expect_error 400 invalid_request "a bad expires_at"
api POST /v1/check '{"account":"acme"}'
expect_error 400 invalid_request "check without a feature"
api POST /v1/check '{"account":"acme","feature":"boards","quantity":-1}'
expect_error 400 invalid_request "a negative quantity"
api POST /v1/check '{"account":"acme","feature":"boards","quantity":1.5}'
expect_error 400 invalid_request "a fractional quantity"
api PUT /v1/accounts/acme '{"plan_version":0,"plan":"free"}'
expect_error 400 invalid_request "plan_version 0"
api PUT /v1/accounts/acme '{"renews_at":"soon"}'
expect_error 400 invalid_request "a bad renews_at"
api PUT /v1/accounts/acme '{"interval":"week"}'
expect_error 400 invalid_request "a bad interval"

section "body size"
hr_stop
hr_fresh
hr_start --max-body 1024
api PUT /v1/accounts/acme '{"name":"Acme","plan":"free"}'
expect_status 201 "a small body under --max-body 1024"
BIG=$(python3 -c 'import json; print(json.dumps({"name": "x" * 2048}))')
api PUT /v1/accounts/acme "$BIG"
expect_error 413 payload_too_large "2 KB with Content-Length"
api PUT /v1/accounts/acme "$BIG" -H 'Transfer-Encoding: chunked'
expect_error 413 payload_too_large "2 KB chunked"
api GET /v1/accounts/acme
expect_json name Acme "the refused bodies changed nothing"
api GET /healthz
expect_status 200 "the server still answers"
EXACT=$(python3 -c 'import json; s = json.dumps({"name": ""}); print(json.dumps({"name": "y" * (1024 - len(s))}))')
check "the exact-size body is 1024 bytes" [ "${#EXACT}" = 1024 ]
api PUT /v1/accounts/acme "$EXACT"
expect_status 200 "a body of exactly --max-body"
hr_stop
hr_fresh
hr_start

api PUT /v1/accounts/acme '{"name":"Acme","plan":"free"}'
api PUT /v1/accounts/globex '{"name":"Globex","plan":"free"}'
api PUT /v1/accounts/acme/users/u1 '{"role":"admin"}'

section "catalog rules (422)"
api PUT /v1/accounts/acme '{"plan":"gold"}'
expect_error 422 unprocessable "an unknown plan"
api PUT /v1/accounts/acme '{"plan":"business","addons":{"extra_boards":1}}'
expect_error 422 unprocessable "an add-on not available on the plan"
api PUT /v1/accounts/acme '{"plan":"free","addons":{"extra_boards":6}}'
expect_error 422 unprocessable "over max_quantity"
api PUT /v1/accounts/acme '{"plan":"free","addons":{"extra_boards":5}}'
expect_status 200 "exactly max_quantity"
api PUT /v1/accounts/acme '{"plan":"free","addons":{"gold_boards":1}}'
expect_error 422 unprocessable "an unknown add-on"
api PUT /v1/accounts/acme '{"plan":"pro","plan_version":7}'
expect_error 422 unprocessable "a plan version that does not exist"
api PATCH /v1/accounts/acme '{"plan":"gold"}'
expect_error 422 unprocessable "PATCH to an unknown plan"
api GET /v1/accounts/acme
expect_json plan free "the refusals left the plan alone"
expect_json addons.extra_boards 5 "the refusals left the add-ons alone"
api POST /v1/accounts/acme/trials '{"plan":"gold"}'
expect_error 422 unprocessable "a trial of an unknown plan"
api POST /v1/accounts/acme/usage '{"feature":"teleport","increment":1}'
expect_error 422 unprocessable "usage of an unknown feature"
api POST /v1/accounts/nosuch/usage '{"feature":"boards","increment":1}'
expect_error 404 not_found "usage of an unknown account"

section "ids"
api PUT '/v1/accounts/bad!id' '{}'
expect_error 400 invalid_request "an account id with !"
api PUT '/v1/accounts/bad%20id' '{}'
expect_error 400 invalid_request "an account id with a space"
api PUT "/v1/accounts/$(printf 'a%.0s' $(seq 1 129))" '{}'
expect_error 400 invalid_request "an account id of 129 characters"
api PUT '/v1/accounts/acme/users/bad*id' '{}'
expect_error 400 invalid_request "a user id with *"
api PUT '/v1/accounts/has.dot' '{}'
expect_error 400 invalid_request "an account id with a dot"
api PUT '/v1/accounts/ok:with@all+the-chars_1' '{}'
expect_status 201 "an account id with every allowed punctuation"
api PUT '/v1/accounts/acme/users/first.last@example.com' '{}'
expect_status 201 "a user id with dots (an e-mail address)"

section "publishable key: browser identities"
TS=$(now_s)
H=$(user_hash u1 acme "$TS")
ident() { # ident ACCOUNT [USER TS HASH]: the identity fields of a check body
    echo "\"account\":\"$1\",\"user\":\"${2:-u1}\",\"ts\":\"${3:-$TS}\",\"user_hash\":\"${4:-$H}\""
}
API_KEY=$HR_PK api POST /v1/check "{$(ident acme),\"feature\":\"boards\"}"
expect_status 200 "check with a valid user_hash"
expect_json allowed true
expect_json account acme
API_KEY=$HR_PK api POST /v1/check "{\"account\":\"acme\",\"user\":\"u1\",\"ts\":$TS,\"user_hash\":\"$H\",\"feature\":\"boards\"}"
expect_status 200 "ts as a number"
HU=$(echo "$H" | tr a-f A-F)
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "$HU"),\"feature\":\"boards\"}"
expect_status 200 "an upper-case user_hash"
API_KEY=$HR_PK api POST /v1/check '{"account":"acme","feature":"boards"}'
expect_error 401 unauthorized "pk_ without an identity"
API_KEY=$HR_PK api POST /v1/check "{$(ident globex),\"feature\":\"boards\"}"
expect_error 401 unauthorized "acme's hash presented for globex"
API_KEY=$HR_PK api POST /v1/check '{"account":"globex","feature":"boards"}' \
    -H "X-Headroom-User: u1" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_error 403 forbidden "a verified acme identity asking about globex"
API_KEY=$HR_PK api POST /v1/check '{"account":"acme","feature":"boards","user":"u2"}' \
    -H "X-Headroom-User: u1" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
# The headers' identity (u1) verifies; asking as another user is forbidden.
expect_error 403 forbidden "u1's identity asking as u2"
OLD_TS=$((TS - 2 * 86400))
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$OLD_TS" "$(user_hash u1 acme "$OLD_TS")"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "a ts 2 days old"
expect_py "'expired' in d['error']['message']" "the message says expired"
FUT_TS=$((TS + 3600))
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$FUT_TS" "$(user_hash u1 acme "$FUT_TS")"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "a ts an hour ahead"
BADH=$(user_hash u1 acme "$TS" not-the-identity-secret)
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "$BADH"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "a hash under another secret"
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "0000"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "a short hash"
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "$(user_hash u1 acme "$((TS - 1))")"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "a hash for another ts"
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "${TS}x"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "a ts that is not a number"
OLDH=$(user_hash u1 acme "$TS" "$HR_IDSECRET_OLD")
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "$OLDH"),\"feature\":\"boards\"}"
expect_status 200 "a hash under HEADROOM_IDENTITY_SECRET_OLD (rotation)"
API_KEY=$HR_PK api GET /v1/accounts/acme/entitlements \
    -H "X-Headroom-User: u1" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_status 200 "entitlements with pk_ and X-Headroom-* headers"
expect_json account acme
API_KEY=$HR_PK api GET /v1/accounts/acme/entitlements \
    -H "X-Headroom-User: u1" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $OLDH"
expect_status 200 "entitlements with the old secret and no X-Headroom-Account"
API_KEY=$HR_PK api GET "/v1/accounts/acme/entitlements?user=u1&ts=$TS&user_hash=$H"
expect_status 200 "entitlements with the identity in the query"
API_KEY=$HR_PK api GET /v1/accounts/globex/entitlements \
    -H "X-Headroom-User: u1" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_error 403 forbidden "acme's identity on globex's entitlements"
API_KEY=$HR_PK api GET /v1/accounts/acme/entitlements
expect_error 401 unauthorized "entitlements with pk_ and no identity"
api GET /v1/accounts/globex/entitlements
expect_status 200 "the secret key needs no identity"
hr_stop

section "rotation finished: only the new secret"
HEADROOM_IDENTITY_SECRET_OLD= hr_start
# an empty variable falls back to the config, which has no keys: one secret
TS=$(now_s)
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "$(user_hash u1 acme "$TS" "$HR_IDSECRET_OLD")"),\"feature\":\"boards\"}"
expect_error 401 unauthorized "the retired secret is refused"
API_KEY=$HR_PK api POST /v1/check "{$(ident acme u1 "$TS" "$(user_hash u1 acme "$TS")"),\"feature\":\"boards\"}"
expect_status 200 "the current secret still works"
hr_stop

section "startup refusals"
run_daemon() { # run_daemon ENV...: headroomd that must refuse to start
    env "$@" timeout 10 "$HR_BIN/headroomd" --config "$DIR/headroom.yaml" --db "$DIR/refused.db" \
        --listen 127.0.0.1:0 >"$DIR/refused.log" 2>&1
}
run_daemon -u HEADROOM_SECRET_KEY
RC=$?
check "no HEADROOM_SECRET_KEY: non-zero exit" [ "$RC" -ne 0 -a "$RC" -ne 124 ]
check "no HEADROOM_SECRET_KEY: the message says what to set" grep -q "HEADROOM_SECRET_KEY" "$DIR/refused.log"
run_daemon HEADROOM_SECRET_KEY=pk_test_wrong_kind_of_key
RC=$?
check "a pk_ as the secret key: non-zero exit" [ "$RC" -ne 0 -a "$RC" -ne 124 ]
run_daemon HEADROOM_SECRET_KEY=sk_short
RC=$?
check "a too short secret key: non-zero exit" [ "$RC" -ne 0 -a "$RC" -ne 124 ]
run_daemon -u HEADROOM_IDENTITY_SECRET
RC=$?
check "a publishable key without an identity secret: non-zero exit" [ "$RC" -ne 0 -a "$RC" -ne 124 ]
check "... and the message names HEADROOM_IDENTITY_SECRET" grep -q "HEADROOM_IDENTITY_SECRET" "$DIR/refused.log"
printf 'features:\n  boards: {type: limit}\nplans:\n  free:\n    entitlements:\n      boards: lots\n' >"$DIR/bad.yaml"
env timeout 10 "$HR_BIN/headroomd" --config "$DIR/bad.yaml" --db "$DIR/refused.db" \
    --listen 127.0.0.1:0 >"$DIR/refused.log" 2>&1
RC=$?
check "a broken catalog: non-zero exit" [ "$RC" -ne 0 -a "$RC" -ne 124 ]
check "... and the log points at bad.yaml:6:" grep -q "bad.yaml:6:[0-9]" "$DIR/refused.log"
check "no database was created by the refused starts" [ ! -e "$DIR/refused.db" ]

section "headroom validate"
cat >"$DIR/bad.yaml" <<'EOF'
features:
  boards: {type: limit}
  sso: {type: boolean}
plans:
  free:
    entitlements:
      boards: lots
      nosuch: 3
      sso: maybe
EOF
"$HR_BIN/headroom" validate "$DIR/bad.yaml" >"$DIR/validate.out" 2>&1
RC=$?
check "validate of a bad catalog exits 1" [ "$RC" = 1 ]
check "every error as file:line:column" python3 -c '
import re, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if re.match(r".*bad\.yaml:\d+:\d+: ", l)]
want = {7, 8, 9}
got = {int(re.match(r".*bad\.yaml:(\d+):", l).group(1)) for l in lines}
sys.exit(0 if want <= got else 1)' "$DIR/validate.out"
check "the boards error points at line 7 column 15" grep -q 'bad\.yaml:7:15: ' "$DIR/validate.out"
"$HR_BIN/headroom" validate "$HR_SRC/examples/boards/headroom.yaml" >"$DIR/validate.out" 2>&1
RC=$?
check "validate of the example exits 0" [ "$RC" = 0 ]
check "... and says ok" grep -q ': ok' "$DIR/validate.out"
"$HR_BIN/headroom" validate "$DIR/does-not-exist.yaml" >"$DIR/validate.out" 2>&1
RC=$?
check "validate of a missing file exits 1" [ "$RC" = 1 ]
check "... naming the file" grep -q 'does-not-exist.yaml' "$DIR/validate.out"

hr_done
