#!/usr/bin/env bash
# `make bench-scale` (and the second half of `make bench`): the control plane at scale (issue #9),
# inside a network namespace of its own, against the local control plane.
#   tests/bench/scale.sh     (writes scale-report.md and the raw numbers into $BENCH_OUT)
# Scenarios (tests/bench/scale.rs does the measuring):
#   operator   50 IngressControllerSets reconciled to Ready, then the operator's API writes in
#              one idle minute, counted by a TLS proxy between the operator and the API server
#   dataplane  10k Ingresses + Services + EndpointSlices: initial sync to /readyz, RSS, 1000
#              changes timed to the first 200, and one change a second under a fixed-rate load
#              for two minutes, against the same run without changes and against plain nginx
#              reloading a rewritten config file on every change
# Knobs: BENCH_SCALE_INGRESSES (10000), BENCH_SCALE_CHANGES (1000), BENCH_SCALE_CHURN_SECS (120),
# BENCH_SCALE_RATE (500 req/s), BENCH_SCALE_LOAD_HOSTS (100), BENCH_SCALE_SETS (50),
# BENCH_SCALE_IDLE_SECS (60), BENCH_SCALE_DP_THREADS (1), BENCH_SCALE_ONLY (operator|dataplane),
# BENCH_SCALE_STATUS (1; 0: the fleet has no address, so it writes no Ingress status),
# BENCH_SCALE_NGINX (1; 0 skips the plain nginx reference).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/cluster/lib.sh"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ "${SLUICE_NETNS:-}" != 1 ]; then
  # Outside: the reference nginx, the control plane, release builds; then re-enter inside a
  # fresh namespace.
  dpkg -s nginx >/dev/null 2>&1 || { log "installing nginx"; apt-get install -y -q nginx >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q nginx >/dev/null; }; }
  systemctl stop nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
  "$ROOT/tests/cluster/build.sh" all
  (cd "$ROOT" && make release && cargo build --release --locked -p sluice-tests --bin sluice-scale-bench)
  exec "$ROOT/tests/cluster/netns.sh" "$0" "$@"
fi

export SLUICE_STATE="$OUT/scale-state"
export SLUICE_BIN_DIR="$ROOT/target/release"
BENCH="$ROOT/target/release/sluice-scale-bench"
ulimit -n "$(ulimit -Hn)"
trap '"$ROOT/tests/cluster/down.sh" --quiet --keep-logs || true' EXIT
rm -f "$OUT"/scale-{dataplane,operator}.json "$OUT/scale-report.md"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "uptime at start: $(uptime)"
} > "$OUT/scale-machine.txt"

"$ROOT/tests/cluster/up.sh" all >/dev/null
. "$SLUICE_STATE/env"

ONLY="${BENCH_SCALE_ONLY:-all}"
if [ "$ONLY" = all ] || [ "$ONLY" = operator ]; then
  log "operator scenario"
  kubectl create namespace sluice-system >/dev/null
  kubectl apply --server-side -k "$ROOT/config/crd" >/dev/null
  kubectl apply --server-side -k "$ROOT/config/rbac" >/dev/null
  kubectl wait --for=condition=Established crd/ingresscontrollersets.sluice.dev --timeout=60s >/dev/null
  # The counting proxy's serving certificate, from the test cluster's CA (which the
  # operator's kubeconfig trusts).
  P="$SLUICE_STATE/pki"
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$P/proxy.ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$P/proxy.key" -out "$P/proxy.csr" -subj "/CN=sluice-scale-proxy" >/dev/null 2>&1
  openssl x509 -req -in "$P/proxy.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
    -out "$P/proxy.crt" -days 2 -extfile "$P/proxy.ext" >/dev/null 2>&1
  "$BENCH" operator --out "$OUT" --proxy-cert "$P/proxy.crt" --proxy-key "$P/proxy.key"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = dataplane ]; then
  # The method: no controller manager, scheduler or kwok during data-plane runs.
  for c in kwok kube-scheduler kube-controller-manager; do "$ROOT/tests/cluster/component.sh" stop "$c" 2>/dev/null; done
  log "data-plane scenario"
  # The load generator and backend on core 0, the proxy under test on core 1.
  taskset -c 0 "$BENCH" dataplane --out "$OUT"
fi

echo "uptime at end: $(uptime)" >> "$OUT/scale-machine.txt"
"$BENCH" report --out "$OUT"
log "report: $OUT/scale-report.md"
