#!/usr/bin/env bash
# Installs the npm packages the client tests use (package-lock.json, exact
# versions) into node_modules at the repo root, but only when node_modules is
# missing or older than package-lock.json: a machine that is up to date runs
# no npm at all.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f package-lock.json ] || { echo "npm-install: no package-lock.json" >&2; exit 1; }

# npm writes node_modules/.package-lock.json on every install: the best stamp
stamp=node_modules/.package-lock.json
[ -f "$stamp" ] || stamp=node_modules
if [ -d node_modules ] && [ ! package-lock.json -nt "$stamp" ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm-install: npm is not installed (scripts/bootstrap.sh installs it)" >&2
  exit 1
fi
echo "npm-install: npm ci (node_modules is missing or older than package-lock.json)"
npm ci --no-audit --no-fund
# npm ci keeps file times from the tarballs: mark the install as done now
touch node_modules "$stamp" 2>/dev/null || true
