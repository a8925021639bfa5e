#!/usr/bin/env bash
# netns.sh CMD [ARGS...]: runs CMD inside a new network namespace made for this run, in which
# 10.244.0.0/16 (pods, test backends) and 10.96.0.0/16 (Service ClusterIPs) are local
# addresses and the only interface is lo, so no packet can leave it. The API server refuses
# loopback addresses in EndpointSlices; these ranges are what tests publish instead.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: netns.sh CMD [ARGS...]" >&2; exit 2; }
flags=(-n)
# Unprivileged users get a user namespace too (root inside it, nobody outside).
[ "$(id -u)" = 0 ] || flags=(-r -n)
exec unshare "${flags[@]}" -- bash -c '
  set -e
  ip link set lo up
  ip route add local 10.244.0.0/16 dev lo
  ip route add local 10.96.0.0/16 dev lo
  export SLUICE_NETNS=1
  exec "$@"' netns "$@"
