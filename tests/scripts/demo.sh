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
  if ip netns list | grep -qw "$NETNS"; then
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
  down >/dev/null 2>&1 || true
  ip netns add "$NETNS"
  # Same test network as `make test`: 10.244/16 and 10.96/16 local, nothing routed out.
  ip netns exec "$NETNS" bash -c '
    ip link set lo up
    ip route add local 10.244.0.0/16 dev lo
    ip route add local 10.96.0.0/16 dev lo'
  in_ns "$ROOT/tests/cluster/up.sh" all || { down; exit 1; }
  log "TIMING demo up: $(elapsed "$t")s"
  cat <<MSG

A local Kubernetes $K8S_VERSION control plane is running in network namespace '$NETNS'.
Enter it and use kubectl (built from the same version):

  sudo ip netns exec $NETNS bash --rcfile <(echo 'PS1="(sluice-demo) \\w\\$ "; source $SLUICE_STATE/env')
  kubectl get nodes
  kubectl get --raw /version

Or one command at a time:

  sudo ip netns exec $NETNS bash -c 'source $SLUICE_STATE/env && kubectl get nodes -o wide'

Stop it with: make demo-down
MSG
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  shell) exec ip netns exec "$NETNS" bash --rcfile <(echo "PS1='(sluice-demo) \\w\\$ '; source $SLUICE_STATE/env") ;;
  *) die "usage: demo.sh up|down|shell" ;;
esac
