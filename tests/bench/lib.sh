# shellcheck shell=bash
# Shared by tests/bench/run.sh and tests/bench/protocols.sh (sourced after tests/cluster/lib.sh).

# The proxies measured: nginx, HAProxy and Sluice, plus, with BENCH_BASELINE=/path/to/an/older
# sluice-dataplane, that build as "baseline" (before and after a change in the same run).
BASELINE="${BENCH_BASELINE:-}"
PROXIES=(nginx haproxy sluice)
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || die "BENCH_BASELINE=$BASELINE is not an executable"
  PROXIES+=(baseline)
fi

# start_sluice BINARY HTTP_PORT HTTPS_PORT ADMIN_PORT LOG -> echoes the PID: one worker, alone
# on core 1, the bench's IngressClass and fleet, access log off.
start_sluice() {
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$1" --kubeconfig "$KUBECONFIG" \
    --ingress-class bench --config-map bench/fleet --publish-service bench/fleet --bind-address "$PROXY" \
    --http-port "$2" --https-port "$3" --admin-port "$4" --access-log=false >"$5" 2>&1 &
  echo $!
}
