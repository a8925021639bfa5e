#!/usr/bin/env bash
# `make demo` / `make demo-down`: a local control plane in a named network namespace
# (`sluice-demo`) that outlives this command, so a person can poke at it with kubectl.
#   demo.sh up | down | shell
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/cluster/lib.sh"
NETNS="${SLUICE_DEMO_NETNS:-sluice-demo}"
export SLUICE_STATE="${SLUICE_DEMO_STATE:-/tmp/sluice-demo}"

[ "$(id -u)" = 0 ] || die "make demo needs root for a named network namespace (ip netns); run it with sudo"

in_ns() { ip netns exec "$NETNS" env SLUICE_STATE="$SLUICE_STATE" "$@"; }

down() {
  if [[ " $(ip netns list | awk '{print $1}' | tr '\n' ' ') " == *" $NETNS "* ]]; then
    in_ns "$ROOT/tests/cluster/down.sh" --quiet || true
    ip netns delete "$NETNS"
  fi
  rm -rf "$SLUICE_STATE"
  log "demo stopped; namespace $NETNS removed"
}

up() {
  local t
  t="$(now_s)"
  "$ROOT/tests/cluster/build.sh" all
  (cd "$ROOT" && cargo build --workspace --locked --bins)
  down >/dev/null 2>&1 || true
  ip netns add "$NETNS"
  # Same test network as `make test`: 10.244/16 and 10.96/16 local, nothing routed out.
  ip netns exec "$NETNS" bash -c '
    ip link set lo up
    ip route add local 10.244.0.0/16 dev lo
    ip route add local 10.96.0.0/16 dev lo'
  in_ns "$ROOT/tests/cluster/up.sh" all || { down; exit 1; }
  in_ns "$ROOT/tests/scripts/world.sh" || {
    log "bringing up Sluice failed; logs are in $SLUICE_STATE/logs (make demo-down cleans up)"
    exit 1
  }
  log "TIMING demo up: $(elapsed "$t")s"
  cat <<MSG

Sluice is running in network namespace '$NETNS' on a local Kubernetes $K8S_VERSION control
plane: the operator, three fleets (public, private, and the walkthrough's default class),
and example apps. Open a shell there (kubectl and curl work as printed below):

  make demo-shell            # or: sudo ip netns exec $NETNS bash, then source $SLUICE_STATE/env

Try these inside it:

$(sed 's/^/  /' "$SLUICE_STATE/world/curl.txt")

Or run one from outside, prefixed:  sudo ip netns exec $NETNS bash -c 'source $SLUICE_STATE/env && <command>'
Logs: $SLUICE_STATE/logs.  Stop everything: make demo-down
MSG
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  shell) exec ip netns exec "$NETNS" bash --rcfile <(echo "PS1='(sluice-demo) \\w\\$ '; source $SLUICE_STATE/env") ;;
  *) die "usage: demo.sh up|down|shell" ;;
esac
