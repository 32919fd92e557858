#!/usr/bin/env bash
# make demo: the demo catalog, a generated data set, headroomd in the
# background on the embedded SQLite store, and what to try next.
# Keys here are demo keys, printed for you; never use them in production.
set -euo pipefail
BUILD=${1:-build}; DIR=${2:-demo}; PORT=${3:-8080}
cd "$(dirname "$0")/.."
mkdir -p "$DIR"
if [ -f "$DIR/headroomd.pid" ] && kill -0 "$(cat "$DIR/headroomd.pid")" 2>/dev/null; then
  kill "$(cat "$DIR/headroomd.pid")"; sleep 0.5
fi
cp examples/boards/headroom.yaml "$DIR/headroom.yaml"
fresh=0
if [ ! -f "$DIR/headroom.db" ]; then
  "$BUILD/headroom" demo-data --accounts 1000 --users 3 --db "$DIR/headroom.db" \
    --config "$DIR/headroom.yaml" --events "$DIR/events.jsonl"
  fresh=1
fi
export HEADROOM_SECRET_KEY=sk_demo_secret_0123456789
export HEADROOM_PUBLISHABLE_KEY=pk_demo_publishable_0123456789
export HEADROOM_IDENTITY_SECRET=demo_identity_secret
export HEADROOM_WRITE_KEY=wk_demo_write_0123456789
rm -f "$DIR/ready"
nohup "$BUILD/headroomd" --config "$DIR/headroom.yaml" --db "$DIR/headroom.db" \
  --listen "127.0.0.1:$PORT" --ready-file "$DIR/ready" --demo-app examples/boards/app \
  >"$DIR/headroomd.log" 2>&1 &
echo $! > "$DIR/headroomd.pid"
for _ in $(seq 1 100); do [ -f "$DIR/ready" ] && break; sleep 0.1; done
if [ ! -f "$DIR/ready" ]; then
  echo "headroomd did not start; its log:"; cat "$DIR/headroomd.log"; exit 1
fi
URL=$(cat "$DIR/ready")
if [ "$fresh" = 1 ]; then
  # a year of product events, through the Segment-compatible API like any client's
  "$BUILD/headroom" import --url "$URL" --key "$HEADROOM_WRITE_KEY" "$DIR/events.jsonl"
fi
# the demo app's two workspaces: acme on Free (u1), globex on Pro (g1)
demo_put() {
  curl -s -o /dev/null -X PUT "$URL$1" -H "Authorization: Bearer $HEADROOM_SECRET_KEY" \
       -H 'Content-Type: application/json' -d "$2"
}
if ! curl -sf -o /dev/null "$URL/v1/accounts/acme" -H "Authorization: Bearer $HEADROOM_SECRET_KEY"; then
  demo_put /v1/accounts/acme '{"name":"Acme","plan":"free"}'
  demo_put /v1/accounts/acme/users/u1 '{"role":"admin"}'
  demo_put /v1/accounts/globex '{"name":"Globex","plan":"pro"}'
  demo_put /v1/accounts/globex/users/g1 '{"role":"admin"}'
fi
cat <<MSG

headroom is running at $URL  (log: $DIR/headroomd.log, stop: make demo-stop)
  demo app (the SDK in a tiny boards product): $URL/demo/  (acme on Free; ?account=globex&user=g1 on Pro)
  secret key:       $HEADROOM_SECRET_KEY
  publishable key:  $HEADROOM_PUBLISHABLE_KEY
  identity secret:  $HEADROOM_IDENTITY_SECRET
  write key:        $HEADROOM_WRITE_KEY  (Segment clients: HTTP Basic user name)
  1000 demo accounts (acct_000001 ...) on the catalog in $DIR/headroom.yaml,
  with a year of their product events (meters, history: try GET /v1/accounts/acct_000001/usage?meter=api_calls)

Try:
  # create acme on the free plan with 3 of its 3 boards used
  curl -s -X PUT $URL/v1/accounts/acme -H 'Authorization: Bearer $HEADROOM_SECRET_KEY' \\
       -H 'Content-Type: application/json' -d '{"name":"Acme","plan":"free","renews_at":"2026-12-01T00:00:00Z"}'
  curl -s -X POST $URL/v1/accounts/acme/usage -H 'Authorization: Bearer $HEADROOM_SECRET_KEY' \\
       -H 'Content-Type: application/json' -d '{"feature":"boards","set":3}'

  # may acme create 1 more board? (no: and here is the cheapest way to yes)
  curl -s -X POST $URL/v1/check -H 'Authorization: Bearer $HEADROOM_SECRET_KEY' \\
       -H 'Content-Type: application/json' -d '{"account":"acme","feature":"boards","quantity":1}'

  # product events from any Segment client: they feed the meters
  curl -s -u $HEADROOM_WRITE_KEY: $URL/v1/track -H 'Content-Type: application/json' \\
       -d '{"userId":"u1","event":"API Called","context":{"groupId":"acme"}}'

  # everything a billing screen shows
  curl -s $URL/v1/accounts/acme/entitlements -H 'Authorization: Bearer $HEADROOM_SECRET_KEY'
MSG
