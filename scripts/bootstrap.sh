#!/usr/bin/env bash
# Installs what building, testing and running headroom needs on Debian 12,
# and only what is missing: a machine that has everything runs no apt at all.
#   scripts/bootstrap.sh          build + test dependencies (and npm packages)
#   scripts/bootstrap.sh --bench  also the benchmark tools (wrk, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(cmake make gcc pkg-config python3 curl ca-certificates
      libmicrohttpd-dev libjson-c-dev libyajl-dev libfyaml-dev libsqlite3-dev sqlite3 libzstd-dev libssl-dev libjemalloc-dev
      libcurl4-openssl-dev libcmocka-dev clang libclang-rt-14-dev nodejs npm python3-scipy
      chromium)
[ "${1:-}" = "--bench" ] && pkgs+=(wrk nginx-light)

missing=()
for p in "${pkgs[@]}"; do
  # a tool already on PATH (node and npm from another source, say) counts as present
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages for the client tests (real OpenFeature / Segment clients)
if [ -f package.json ] && [ -x scripts/npm-install.sh ]; then
  scripts/npm-install.sh
fi
