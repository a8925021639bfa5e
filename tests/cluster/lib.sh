# Shared helpers for tests/cluster scripts. Sourced, not executed.
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$CLUSTER_DIR/versions.env"

SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
KUBEBINS="$SLUICE_CACHE/kubebins/${K8S_VERSION}-${ETCD_VERSION}-${KWOK_VERSION}"
# Runtime state of a running cluster (PIDs, PKI, logs, data). Outside the repo.
SLUICE_STATE="${SLUICE_STATE:-${TMPDIR:-/tmp}/sluice-cluster}"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# now_s: seconds since epoch with fraction, for step timings.
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN{printf "%.1f", b-a}'; }
