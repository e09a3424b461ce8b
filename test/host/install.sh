#!/usr/bin/env bash
# Installs what test/host/run.mjs needs: Debian chromium/ripgrep/libkrb5-dev and
# code-server 4.100.3 (the VS Code server, Node 20) plus playwright-core in
# .cache/code-server/, a folder with its own package.json, away from the
# project's lockfile. Idempotent: a second run only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
CS_VERSION=4.100.3
PW_VERSION=1.55.0
DIR=.cache/code-server

missing=()
for p in chromium ripgrep libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "apt: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -f $DIR/node_modules/code-server/lib/vscode/out/server-main.js && -f $DIR/node_modules/playwright-core/package.json ]]; then
  echo "code-server $CS_VERSION and playwright-core already in $DIR"
  exit 0
fi

mkdir -p "$DIR"
[[ -f $DIR/package.json ]] || echo '{ "name": "xetrieval-vscode-host", "private": true }' > "$DIR/package.json"

# @vscode/ripgrep downloads rg from GitHub unless this cache tarball exists;
# Debian's rg packed under that name satisfies it.
export TMPDIR=${TMPDIR:-/tmp}
RG_CACHE=$TMPDIR/vscode-ripgrep-cache-1.15.11
RG_TAR=$RG_CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
if [[ ! -f $RG_TAR ]]; then
  mkdir -p "$RG_CACHE"
  tar -C /usr/bin -czf "$RG_TAR" rg
fi

echo "npm: installing code-server@$CS_VERSION playwright-core@$PW_VERSION into $DIR"
(cd "$DIR" && npm_config_unsafe_perm=true npm_config_yes=true \
  npm install --no-audit --no-fund --loglevel=error "code-server@$CS_VERSION" "playwright-core@$PW_VERSION")
test -f "$DIR/node_modules/code-server/lib/vscode/out/server-main.js"
echo "installed into $DIR"
