#!/usr/bin/env bash
# test_tutorial.sh: the README story against a real headroomd: accounts,
# users, usage, the decision and its upgrade path, trials, overrides,
# idempotent usage, entitlements, pagination, grandfathering.
source "$(dirname "$0")/lib.sh"

hr_start

check_req() { # check_req ACCOUNT FEATURE [QTY]
    api POST /v1/check "{\"account\":\"$1\",\"feature\":\"$2\",\"quantity\":${3:-1}}"
}

section "accounts and users"
RENEWS=$(rfc3339_in $((30 * 86400)))
api PUT /v1/accounts/acme '{"name":"Acme Inc","plan":"free"}'
expect_status 201 "create acme"
expect_json id acme
expect_json plan free
expect_json name "Acme Inc"
api PUT /v1/accounts/acme "{\"name\":\"Acme Inc\",\"plan\":\"free\",\"renews_at\":\"$RENEWS\"}"
expect_status 200 "re-PUT acme"
expect_json renews_at "$RENEWS"
api PUT /v1/accounts/acme/users/u1 '{"role":"admin"}'
expect_status 201 "user u1"
expect_json role admin
api PUT /v1/accounts/acme/users/u2 '{"role":"member","seat_type":"full"}'
expect_status 201 "user u2"
api PUT /v1/accounts/acme/users/u2 '{"role":"viewer"}'
expect_status 200 "re-PUT user u2"
expect_json role viewer
api GET /v1/accounts/acme/users/u2
expect_status 200 "GET user u2"
expect_json account acme
api GET /v1/accounts/acme/users
expect_status 200 "list users"
expect_py "sorted(u['id'] for u in d['users']) == ['u1', 'u2']" "users are u1 and u2"
api GET /v1/accounts/acme
expect_json users 2 "account counts its users"

section "at the limit: the cheapest way to a yes"
api POST /v1/accounts/acme/usage '{"feature":"boards","set":3}'
expect_status 200 "usage set 3"
expect_json usage 3
check_req acme boards 1
expect_status 200 "check boards"
expect_json allowed false
expect_json reason limit_reached
expect_json usage 3
expect_json limit 3
expect_json remaining 0
expect_json upgrade.kind addon
expect_json upgrade.addon extra_boards
expect_json upgrade.quantity 1
expect_json upgrade.price_delta.amount 500
expect_json upgrade.price_delta.currency USD
expect_json upgrade.price_delta.interval month
expect_json upgrade.limit_after 13
expect_json trial.kind plan
expect_json trial.plan pro
expect_json trial.days 14
expect_py "any(a.get('plan') == 'pro' and a['price_delta']['amount'] == 1200 and a['limit_after'] == 50 for a in d['alternatives'])" \
    "alternatives include pro at +1200 with 50 boards"
expect_py "any(a.get('kind') == 'contact_sales' and a.get('plan') == 'enterprise' for a in d['alternatives'])" \
    "alternatives include enterprise as contact_sales"

check_req acme boards 25
expect_json allowed false "qty 25"
expect_json upgrade.kind plan "qty 25"
expect_json upgrade.plan pro "qty 25"
expect_json upgrade.limit_after 50 "qty 25"
expect_py "any(a.get('addon') == 'extra_boards' and a['quantity'] == 3 and a['limit_after'] == 33 for a in d['alternatives'])" \
    "qty 25: 3 x extra_boards is an alternative"

check_req acme boards 0
expect_json allowed true "qty 0 at the limit"

section "feature trial"
check_req acme private_boards
expect_json allowed false
expect_json reason not_in_plan
expect_json trial.kind feature
expect_json trial.feature private_boards
expect_json trial.days 14
expect_json upgrade.plan pro "private_boards"
api POST /v1/accounts/acme/trials/private_boards
expect_status 201 "start the private_boards trial"
expect_json kind feature
expect_json active true
check_req acme private_boards
expect_json allowed true "during the feature trial"
expect_json reason trial_active "during the feature trial"
api POST /v1/accounts/acme/trials/private_boards
expect_error 409 conflict "a second feature trial"
api POST /v1/accounts/acme/trials/boards
expect_error 422 unprocessable "a feature without a trial"

section "plan trial"
api POST /v1/accounts/acme/trials '{"plan":"pro"}'
expect_status 201 "start a pro trial"
expect_json kind plan
expect_json plan pro
expect_json active true
check_req acme boards 1
expect_json allowed true "boards during the pro trial"
expect_json reason trial_active "boards during the pro trial"
expect_json limit 50 "boards during the pro trial"
api POST /v1/accounts/acme/trials '{"plan":"pro"}'
expect_error 409 conflict "a second plan trial"
api POST /v1/accounts/acme/trials '{"plan":"business"}'
expect_error 422 unprocessable "a plan without a trial"
api GET /v1/accounts/acme
expect_json plan free "the plan is unchanged by a trial"
expect_json plan_trial_used true
expect_json trial.plan pro
expect_json trial.active true

section "overrides"
api PUT /v1/accounts/acme/overrides/seats "{\"value\":20,\"expires_at\":\"$(rfc3339_in 86400)\"}"
expect_status 200 "override seats to 20"
check_req acme seats 10
expect_json allowed true "seats 10"
expect_json reason override "seats 10"
expect_json limit 20 "seats 10"
check_req acme seats 15
expect_json allowed true "seats 15 (more than the pro trial's 10)"
expect_json reason override "seats 15"
check_req acme seats 21
expect_json allowed false "seats 21 over the override"
expect_py "d.get('upgrade') is None and d.get('alternatives', []) == []" "an override offers no upgrade"
api GET /v1/accounts/acme
expect_py "any(o['feature'] == 'seats' and o['value'] == 20 for o in d['overrides'])" "the account lists the override"
api DELETE /v1/accounts/acme/overrides/seats
expect_status 204 "delete the override"
check_req acme seats 15
expect_json allowed false "seats 15 without the override"
api DELETE /v1/accounts/acme/overrides/seats
expect_error 404 not_found "delete a missing override"
api PUT /v1/accounts/acme/overrides/seats "{\"value\":20,\"expires_at\":\"$(rfc3339_in 86400)\"}"
expect_status 200 "override seats again"

api PUT /v1/accounts/globex '{"name":"Globex","plan":"free"}'
expect_status 201 "create globex"
api POST /v1/accounts/globex/usage '{"feature":"boards","set":3}'
api PUT /v1/accounts/globex/overrides/boards "{\"value\":100,\"expires_at\":\"$(rfc3339_in -3600)\"}"
expect_status 200 "an already-expired override is accepted"
check_req globex boards 1
expect_json allowed false "expired override has no effect"
expect_json reason limit_reached "expired override has no effect"
expect_json limit 3 "expired override has no effect"
api PUT /v1/accounts/globex/overrides/sso '{"value":true}'
expect_status 200 "override sso on (no expiry)"
check_req globex sso
expect_json allowed true "sso by override"
expect_json reason override "sso by override"
api PUT /v1/accounts/globex/overrides/boards '{"value":"unlimited"}'
check_req globex boards 1000
expect_json allowed true "unlimited override"
expect_json unlimited true "unlimited override"
api PUT /v1/accounts/globex/overrides/sso '{"value":5}'
expect_error 400 invalid_request "a number for a boolean override"
api PUT /v1/accounts/globex/overrides/nosuch '{"value":5}'
expect_error 422 unprocessable "override of an unknown feature"

section "idempotent usage"
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":5}' -H 'Idempotency-Key: inc-1'
expect_status 200 "increment with a key"
expect_json usage 5
FIRST=$BODY
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":5}' -H 'Idempotency-Key: inc-1'
expect_status 200 "the retry"
check "the retry returns the first answer" [ "$BODY" = "$FIRST" ]
check_req acme api_calls
expect_json usage 5 "counted once"
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":6}' -H 'Idempotency-Key: inc-1'
expect_error 409 conflict "the same key with another body"
check_req acme api_calls
expect_json usage 5 "still counted once"
api POST /v1/accounts/globex/usage '{"feature":"api_calls","increment":6}' -H 'Idempotency-Key: inc-1'
expect_status 200 "the same key on another account is independent"
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":2}'
check_req acme api_calls
expect_json usage 7 "increments without a key add up"
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":-100}'
expect_json usage 0 "usage never goes below 0"
api POST /v1/accounts/acme/usage '{"feature":"api_calls","increment":5}'
api POST /v1/accounts/acme/usage '{"feature":"sso","increment":1}'
expect_error 422 unprocessable "usage of a boolean feature"

section "metered period"
check_req acme api_calls
NEXT_MONTH=$(python3 -c '
import datetime
n = datetime.datetime.now(datetime.timezone.utc)
y, m = (n.year + 1, 1) if n.month == 12 else (n.year, n.month + 1)
print("%04d-%02d-01T00:00:00Z" % (y, m))')
expect_json resets_at "$NEXT_MONTH" "api_calls resets on the first of next month"
expect_json type metered
expect_json limit 100000 "api_calls during the pro trial"

section "entitlements"
api GET /v1/catalog
FEATURES=$(json_get features)
api GET /v1/accounts/acme/entitlements
expect_status 200 "entitlements"
expect_json account acme
expect_json renews_at "$RENEWS"
expect_json plan.key free
expect_json currency USD
expect_py "sorted(d['features']) == sorted(json.loads('''$FEATURES'''))" "every catalog feature is listed"
expect_py "all(all(k in f for k in ('usage', 'limit', 'remaining')) for f in d['features'].values() if f['type'] != 'boolean')" \
    "every counted feature has usage, limit and remaining"
expect_json features.boards.usage 3
expect_json features.boards.limit 50
expect_json features.boards.source trial
expect_json features.seats.source override
expect_json features.seats.limit 20
expect_json features.private_boards.enabled true
expect_json features.api_calls.resets_at "$NEXT_MONTH"
expect_py "[a['addon'] for a in d['available_addons']] == ['extra_boards', 'more_storage']" \
    "available add-ons on free: extra_boards, more_storage"
expect_py "[u['plan'] for u in d['upgrades']] == ['pro', 'business', 'enterprise']" "upgrades: pro, business, enterprise"
expect_json trial.plan pro
expect_py "d['feature_trials_available'] == []" "no feature trial left"
api GET /v1/accounts/nosuch/entitlements
expect_error 404 not_found "entitlements of an unknown account"

section "soft limit (overage)"
api PUT /v1/accounts/initech '{"name":"Initech","plan":"free"}'
api POST /v1/accounts/initech/usage '{"feature":"storage_gb","set":1}'
expect_json remaining 0
check_req initech storage_gb 3
expect_json allowed true "storage over the plan"
expect_json reason overage
expect_json overage.units 3
expect_json overage.unit_price.amount 50
expect_json overage.cost.amount 150
expect_json overage.cost.currency USD
expect_json upgrade.addon more_storage "overage still offers the upgrade"
check_req initech boards 1
expect_json allowed true "a hard limit below the limit"
expect_json reason ok

section "unknown account and feature"
check_req nosuch boards
expect_status 200 "check an unknown account"
expect_json allowed false
expect_json reason unknown_account
check_req acme teleport
expect_json allowed false
expect_json reason unknown_feature

section "grandfathering"
api PUT /v1/accounts/oldco '{"name":"Old Co","plan":"pro","plan_version":1}'
expect_status 201 "an account on pro v1"
expect_json plan_version 1
check_req oldco boards 1
expect_json limit 20 "pro v1 has 20 boards"
expect_json allowed true
api PATCH /v1/accounts/oldco '{"name":"Old Company"}'
expect_status 200 "rename oldco"
expect_json plan_version 1 "after PATCH"
check_req oldco boards 1
expect_json limit 20 "still 20 boards after PATCH"
api PUT /v1/accounts/oldco '{"name":"Old Company","plan":"pro"}'
expect_json plan_version 1 "a re-PUT on the same plan keeps v1"
api GET /v1/accounts/oldco/entitlements
expect_json plan.version 1
expect_json plan.current_version 2
expect_json plan.price.amount 1000 "v1's price"
api PUT /v1/accounts/newco '{"name":"New Co","plan":"pro"}'
expect_json plan_version 2 "a new pro account gets v2"
check_req newco boards 1
expect_json limit 50 "pro v2 has 50 boards"
api PUT /v1/accounts/oldco '{"plan":"business"}'
api PUT /v1/accounts/oldco '{"plan":"pro"}'
expect_json plan_version 2 "moving away and back lands on v2"

section "listing accounts"
for id in list-a list-b list-c list-d list-e; do
    api PUT "/v1/accounts/$id" "{\"name\":\"$id\"}"
    [ "$STATUS" = 201 ] || fail "create $id" "status $STATUS"
done
api GET /v1/accounts
TOTAL=$(json_get total)
ALL=$(json_get accounts)
check "the list without a cursor has every account" py "len(d) == $TOTAL" "$ALL"
SEEN=""
CURSOR=""
PAGES=0
PAGES_OK=1
while :; do
    api GET "/v1/accounts?limit=2${CURSOR:+&cursor=$CURSOR}"
    [ "$STATUS" = 200 ] || { fail "page $PAGES" "status $STATUS"; break; }
    py "len(d['accounts']) <= 2" || PAGES_OK=0
    SEEN="$SEEN $(json_get accounts | python3 -c 'import json,sys; print(" ".join(a["id"] for a in json.load(sys.stdin)))')"
    CURSOR=$(json_get next_cursor)
    PAGES=$((PAGES + 1))
    [ "$CURSOR" = null ] && break
    [ "$PAGES" -gt 50 ] && { fail "pagination ends"; break; }
done
check "pages hold at most 2 accounts" [ "$PAGES_OK" = 1 ]
check "every account exactly once over $PAGES pages" python3 -c '
import json, sys
seen = sys.argv[1].split()
want = sorted(a["id"] for a in json.loads(sys.argv[2]))
sys.exit(0 if sorted(seen) == want and len(seen) == len(set(seen)) == int(sys.argv[3]) else 1)' \
    "$SEEN" "$ALL" "$TOTAL"
check "list-a..list-e are listed" python3 -c '
import sys; s = sys.argv[1].split(); sys.exit(0 if all("list-" + c in s for c in "abcde") else 1)' "$SEEN"
api GET "/v1/accounts?limit=0"
expect_error 400 invalid_request "limit=0"

section "PATCH changes only what it names"
api GET /v1/accounts/acme
BEFORE=$BODY
api PATCH /v1/accounts/acme '{"name":"Acme Corp"}'
expect_status 200 "PATCH name"
expect_json name "Acme Corp"
check "PATCH changed nothing else" python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for d in (a, b):
    d.pop("name"); d.pop("updated_at")
sys.exit(0 if a == b else 1)' "$BEFORE" "$BODY"
api PATCH /v1/accounts/nosuch '{"name":"x"}'
expect_error 404 not_found "PATCH an unknown account"

section "delete"
api DELETE /v1/accounts/acme/users/u2
expect_status 204 "delete user u2"
api GET /v1/accounts/acme/users/u2
expect_error 404 not_found "the deleted user"
api DELETE /v1/accounts/acme
expect_status 204 "delete acme"
check "the 204 has no body" [ -z "$BODY" ]
api GET /v1/accounts/acme
expect_error 404 not_found "GET the deleted account"
check_req acme boards
expect_json reason unknown_account "check the deleted account"
api DELETE /v1/accounts/acme
expect_error 404 not_found "delete it again"
api PUT /v1/accounts/acme '{"plan":"free"}'
expect_status 201 "re-create acme"
expect_json users 0 "a re-created account starts empty"
check_req acme boards 1
expect_json usage 0 "a re-created account has no usage"

hr_stop
hr_done
