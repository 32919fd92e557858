#!/usr/bin/env bash
# test_campaigns.sh: in-app prompts end to end over HTTP: the campaign
# section's errors, triggers, audience and gate rules, sticky variants per
# account, caps, the throttle, dismissals that survive kill -9 (server-side
# state: cleared cookies do not bring a prompt back), holdout exposures,
# goal conversions from ingested events, results, and browser identity.
source "$(dirname "$0")/lib.sh"

hr_init
# the boards catalog without its campaigns, plus campaigns made for testing
python3 - "$HR_SRC/examples/boards/headroom.yaml" "$DIR/headroom.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
text = text[:text.index("# In-app upgrade prompts")]
text += '''
throttle: {per_user: 3, per: 1d}
campaigns:
  tip:
    trigger: {feature_denied: private_boards}
    audience: 'account.plan == "free"'
    gate: 'count("Board Created", 30d) >= 2'
    content:
      type: tooltip
      title: {en: "Keep boards private", de: "Boards privat halten"}
      body: "Pro keeps boards private."
      cta: {label: "Try it 14 days", action: start_trial}
    variants:
      a: {weight: 50}
      b: {weight: 50, content: {body: "Your boards are public."}}
    cap: {per_user: 2, per: 7d, cooldown_after_dismiss: 14d}
    goal: {event: "Plan Upgraded", within: 14d}
    priority: 10
  modal:
    trigger: {limit_hit: boards}
    content: {type: modal, title: "Out of boards", cta: {label: Upgrade, action: upgrade, plan: pro}}
    priority: 20
  held:
    trigger: {event: "Report Exported"}
    content: {type: banner, title: "Reports on Pro"}
    variants:
      shown: {weight: 0}
      control: {weight: 1, holdout: true}
    goal: {event: "Plan Upgraded", within: 14d}
  later:
    trigger: on_load
    starts_at: "2099-01-01T00:00:00Z"
    content: {type: banner, title: "Not yet"}
'''
open(sys.argv[2], "w").write(text)
PY
export HEADROOM_CORS_ORIGINS="https://app.example.com, https://other.example.com"
hr_start

prompts() { # prompts USER ACCOUNT TRIGGER [EXTRA QUERY]
    api GET "/v1/prompts?user=$1&account=$2&trigger=$3${4:-}"
}
track() { # track USER ACCOUNT EVENT
    api POST /v1/track "{\"userId\":\"$1\",\"event\":\"$3\",\"context\":{\"groupId\":\"$2\"}}"
}

section "setup"
for a in acme initech; do
    api PUT "/v1/accounts/$a" '{"plan":"free"}'
    expect_status 201 "$a on free"
done
for u in u1 u2 u3; do api PUT "/v1/accounts/acme/users/$u" '{"role":"member"}'; done
api PUT /v1/accounts/globex '{"plan":"pro"}'
api PUT /v1/accounts/globex/users/g1 '{}'

section "audience and gate"
prompts u1 acme feature_denied:private_boards
expect_status 200 "prompts"
expect_json prompts "[]" "gate holds it back before 2 boards"
track u1 acme "Board Created"
track u2 acme "Board Created"
prompts u1 acme feature_denied:private_boards "&locale=de-CH"
expect_json prompts.0.campaign tip "past the aha moment the tooltip shows"
expect_json prompts.0.content.type tooltip
expect_json prompts.0.content.anchor private_boards "anchor defaults to the trigger's feature"
expect_json prompts.0.content.title "Boards privat halten" "de-CH falls back to de"
expect_json prompts.0.content.cta.action start_trial
expect_json prompts.0.content.cta.feature private_boards
VARIANT=$(json_get prompts.0.variant)
ID=$(json_get prompts.0.id)
check "id is campaign:variant" test "$ID" = "tip:$VARIANT"
prompts g1 globex feature_denied:private_boards
expect_json prompts "[]" "audience: pro accounts never see it"
prompts u1 acme limit_hit:seats
expect_json prompts "[]" "another trigger shows nothing"
prompts u1 acme "bogus"
expect_error 400 invalid_request "unknown trigger"
api GET "/v1/prompts?user=u1&trigger=on_load"
expect_error 400 invalid_request "account is required"
prompts u1 nosuch feature_denied:private_boards
expect_error 404 not_found "unknown account"

section "variants are per account, sticky"
prompts u2 acme feature_denied:private_boards
expect_json prompts.0.variant "$VARIANT" "a teammate sees the same variant"
if [ "$VARIANT" = b ]; then expect_json prompts.0.content.body "Your boards are public." "variant b's body"; fi

section "per-user cap and global throttle"
prompts u1 acme feature_denied:private_boards
expect_json prompts.0.campaign tip "second show within the cap"
prompts u1 acme feature_denied:private_boards
expect_json prompts "[]" "cap: 2 per 7 days"
prompts u1 acme limit_hit:boards
expect_json prompts.0.campaign modal "another campaign still may (throttle 3/day)"
prompts u1 acme limit_hit:boards
expect_json prompts "[]" "throttle: 3 prompts per user per day across campaigns"

section "dismissal is kept on the server, across kill -9"
api POST "/v1/prompts/$ID/events" '{"type":"dismiss","user":"u2","account":"acme"}'
expect_status 200 "dismiss recorded"
expect_json recorded true
hr_kill9
hr_start
prompts u2 acme feature_denied:private_boards
expect_json prompts "[]" "dismissed prompt stays away after a restart (cooldown 14d)"
prompts u1 acme limit_hit:boards
expect_json prompts "[]" "the throttle is rebuilt from the shows after a restart"
prompts u3 acme feature_denied:private_boards
expect_json prompts.0.variant "$VARIANT" "another user still sees it, same variant after restart"
api POST "/v1/prompts/$ID/events" '{"type":"wave","user":"u2","account":"acme"}'
expect_error 400 invalid_request "bad event type"
api POST "/v1/prompts/nosuch:a/events" '{"type":"click","user":"u2","account":"acme"}'
expect_error 404 not_found "unknown prompt"
api POST "/v1/prompts/$ID/events" '{"type":"impression","user":"u3","account":"acme"}'
api POST "/v1/prompts/$ID/events" '{"type":"click","user":"u3","account":"acme"}'

section "holdout: exposed, shown nothing"
prompts i1 initech "event:Report%20Exported"
expect_json prompts "[]" "holdout sees nothing"
api GET /v1/campaigns/held/results
expect_json control control
expect_py "[v['exposures'] for v in d['variants'] if v['variant']=='control'] == [1]" "holdout unit counted as exposed"

section "conversions from the goal event"
track u1 acme "Plan Upgraded"
track u1 initech "Plan Upgraded"
api GET /v1/campaigns/tip/results
expect_status 200 "results"
expect_py "sum(v['exposures'] for v in d['variants']) == 1" "one unit (the account) exposed"
expect_py "[v['conversions'] for v in d['variants'] if v['variant']=='$VARIANT'] == [1]" "its conversion counted"
expect_py "all(k in d['variants'][1] for k in ('rate','lift','lift_ci','p_value','chance_to_win','status'))" "every statistic present"
expect_py "d['srm']['checked'] is False" "SRM not checked below 8 units per variant"
expect_py "[e['clicks'] for e in d['events'] if e['variant']=='$VARIANT'] == [1]" "clicks counted"
api GET /v1/campaigns/held/results
expect_py "[v['conversions'] for v in d['variants'] if v['variant']=='control'] == [1]" "holdout conversion counted"
api GET /v1/campaigns/nosuch/results
expect_error 404 not_found "unknown campaign"
api GET /v1/campaigns
expect_py "[c['id'] for c in d['campaigns']] == ['modal', 'tip', 'held', 'later']" "campaigns by priority"
expect_py "[c['status'] for c in d['campaigns'] if c['id']=='later'] == ['scheduled']" "a future campaign is scheduled"
prompts u3 acme on_load
expect_json prompts "[]" "a scheduled campaign does not show"

section "browser identity"
TS=$(now_s)
H=$(user_hash u3 acme "$TS")
API_KEY=$HR_PK api GET "/v1/prompts?user=u3&account=acme&trigger=on_load"
expect_error 401 unauthorized "publishable key needs an identity"
API_KEY=$HR_PK api GET "/v1/prompts?user=u3&account=acme&trigger=on_load&ts=$TS&user_hash=$H"
expect_status 200 "verified identity"
API_KEY=$HR_PK api GET "/v1/prompts?user=u3&account=globex&trigger=on_load" -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_error 403 forbidden "another account"
API_KEY=$HR_PK api GET "/v1/bootstrap?page=/boards" -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_status 200 "bootstrap"
expect_json plan free
expect_json features.private_boards.allowed false
expect_json features.boards.usage 2
API_KEY=$HR_PK api POST /v1/track '{"userId":"u3","event":"Board Created"}' -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_status 200 "the SDK tracks with the publishable key"
API_KEY=$HR_PK api POST /v1/track '{"userId":"u1","event":"Board Created"}' -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_error 403 forbidden "but only as the verified user"
API_KEY=$HR_PK api POST /v1/accounts/acme/trials/private_boards -X POST -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_status 201 "the browser starts a feature trial"
API_KEY=$HR_PK api POST /v1/accounts/globex/trials/private_boards -X POST -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_error 403 forbidden "not for another account"
API_KEY=$HR_PK api GET /v1/campaigns
expect_error 403 forbidden "results need the secret key"

section "cross-origin pages (CORS), the SDK's caching, bootstrap without prompts"
API_KEY= api OPTIONS /v1/prompts -H "Origin: https://app.example.com" -H "Access-Control-Request-Method: GET" -H "Access-Control-Request-Headers: authorization,x-headroom-user"
expect_status 204 "preflight from an allowed origin"
expect_header Access-Control-Allow-Origin "^https://app.example.com$"
expect_header Access-Control-Allow-Headers "X-Headroom-User-Hash"
API_KEY= api OPTIONS /v1/prompts -H "Origin: https://evil.example.com" -H "Access-Control-Request-Method: GET"
expect_status 403 "preflight from another origin"
API_KEY=$HR_PK api GET "/v1/bootstrap?prompts=0" -H "Origin: https://other.example.com" -H "X-Headroom-User: u3" -H "X-Headroom-Account: acme" -H "X-Headroom-Ts: $TS" -H "X-Headroom-User-Hash: $H"
expect_status 200 "bootstrap from another allowed origin"
expect_header Access-Control-Allow-Origin "^https://other.example.com$"
expect_json prompts "[]" "prompts=0: decisions only"
API_KEY= api GET /sdk/headroom.js
expect_status 200 "the SDK"
expect_header Content-Type "^application/javascript"
expect_header Cache-Control "max-age"
ETAG=$(tr -d '\r' <"$HEADERS" | grep -i '^etag:' | sed 's/^[^:]*: *//')
API_KEY= api GET /sdk/headroom.js -H "If-None-Match: $ETAG"
expect_status 304 "the SDK revalidates with its ETag"

section "campaigns over the API"
api PUT /v1/campaigns/welcome '{"trigger":"on_load","audience":"account.plan == \"free\"","content":{"type":"banner","title":"Welcome"}}'
expect_status 201 "create a campaign"
expect_json definition.content.title Welcome
api GET /v1/campaigns/welcome
expect_status 200 "read it back"
api GET /v1/campaigns
expect_py "'welcome' in [c['id'] for c in d['campaigns']]" "listed with the others"
api PUT /v1/campaigns/welcome '{"trigger":"on_load","audience":"account.plan == \"fre\"","content":{"type":"banner","title":"Welcome"}}'
expect_error 422 invalid_catalog "validated like the YAML"
expect_py "'unknown plan' in d['error']['message']" "the message names the problem"
api DELETE /v1/campaigns/welcome
expect_status 204 "delete it"
api GET /v1/campaigns/welcome
expect_error 404 not_found "gone"

section "campaign errors name file:line:column"
cat >"$DIR/bad.yaml" <<'YAML'
features: {boards: {type: limit}}
plans: {free: {entitlements: {boards: 3}}}
campaigns:
  c1:
    trigger: {limit_hit: bords}
    audience: 'account.plan == "fre"'
    gate: 'count("x", 7d) >= "2"'
    content: {type: popup, title: Hi}
    cap: {per_user: 3, per: soon}
YAML
"$HR_BIN/headroom" validate "$DIR/bad.yaml" >"$DIR/out" 2>&1
check "validate fails" test $? -ne 0
check "unknown feature in trigger" grep -q "bad.yaml:5:26: unknown feature 'bords'" "$DIR/out"
check "unknown plan in audience, at its column" grep -q "bad.yaml:6:32: audience: unknown plan 'fre'" "$DIR/out"
check "type error in gate, at its column" grep -q "bad.yaml:7:" "$DIR/out"
check "unknown content type" grep -q "bad.yaml:8:21: unknown content type 'popup'" "$DIR/out"
check "bad duration" grep -q "bad.yaml:9:29: expected a duration" "$DIR/out"

hr_stop
hr_done
