#!/usr/bin/env bash
# Starts the local control plane inside the current network namespace, which must be a test
# network made by netns.sh (10.244.0.0/16 local, nothing routed out).
#   up.sh [stage1|all]      (default all: etcd, kube-apiserver, controller manager, scheduler, kwok)
# Writes $SLUICE_STATE/env (KUBECONFIG and friends). Stop with down.sh. Survives a crashed
# previous run: stale processes recorded in $SLUICE_STATE are stopped and the state is wiped.
. "$(dirname "$0")/lib.sh"

STAGE="${1:-all}"
START_TIMEOUT="${SLUICE_START_TIMEOUT:-90}"

# Read the routes first: `ip ... | grep -q` under pipefail fails at random when grep exits
# early and ip gets SIGPIPE.
local_routes="$(ip route show table local 2>/dev/null || true)"
grep -q '10.244.0.0/16' <<<"$local_routes" \
  || die "not inside a test network namespace (10.244.0.0/16 is not local here); use tests/cluster/netns.sh"

for b in etcd kube-apiserver; do
  [ -x "$KUBEBINS/$b" ] || die "$KUBEBINS/$b missing: run tests/cluster/build.sh first (outside the namespace)"
done
if [ "$STAGE" = all ]; then
  for b in kube-controller-manager kube-scheduler kubectl kwok; do
    [ -x "$KUBEBINS/$b" ] || die "$KUBEBINS/$b missing: run tests/cluster/build.sh first"
  done
fi

"$CLUSTER_DIR/down.sh" --quiet
mkdir -p "$SLUICE_STATE"/{pki,logs,pids,etcd}
S="$SLUICE_STATE"

# --- free ports ------------------------------------------------------------------------
read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT < <(python3 - <<'PY'
import socket
socks = []
for _ in range(6):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

# --- PKI -------------------------------------------------------------------------------
t="$(now_s)"
(
  cd "$S/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
    -subj "/CN=sluice-test-ca" >/dev/null 2>&1
  cat > apiserver.ext <<EXT
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1
extendedKeyUsage=serverAuth
EXT
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" >/dev/null 2>&1
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt \
    -days 30 -extfile apiserver.ext >/dev/null 2>&1
  printf 'extendedKeyUsage=clientAuth\n' > client.ext
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=sluice-admin" >/dev/null 2>&1
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt \
    -days 30 -extfile client.ext >/dev/null 2>&1
  openssl genrsa -out sa.key 2048 >/dev/null 2>&1
  openssl rsa -in sa.key -pubout -out sa.pub >/dev/null 2>&1
) || die "PKI generation failed"

b64() { base64 -w0 < "$1"; }
cat > "$S/kubeconfig" <<EOF2
apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$S/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$S/pki/admin.crt")
    client-key-data: $(b64 "$S/pki/admin.key")
contexts:
- name: sluice-test
  context: {cluster: sluice-test, user: admin}
current-context: sluice-test
EOF2
log "PKI and kubeconfig in $(elapsed "$t")s"

# --- process helpers ---------------------------------------------------------------------
start() { # start NAME BINARY ARGS...: detached in its own session, PID and command recorded
  local name="$1"; shift
  mkdir -p "$S/cmds"
  printf '%s\0' "$@" > "$S/cmds/$name"   # so component.sh can restart it the same way
  setsid "$@" >>"$S/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$S/pids/$name"
}
fail_with_log() {
  log "$1 failed to start; last lines of $S/logs/$1.log:"
  tail -n 40 "$S/logs/$1.log" >&2 || true
  "$CLUSTER_DIR/down.sh" --quiet --keep-logs
  exit 1
}
wait_for() { # wait_for NAME CHECK-COMMAND...: until the check passes, the process dies, or timeout
  local name="$1" deadline=$((SECONDS + START_TIMEOUT)) pid; shift
  pid="$(cat "$S/pids/$name")"
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail_with_log "$name"
    [ $SECONDS -lt $deadline ] || { log "$name: not ready after ${START_TIMEOUT}s"; fail_with_log "$name"; }
    sleep 0.2
  done
}
https_ok() { # https_ok URL: the body is "ok"
  [ "$(curl -fsS --max-time 2 --cacert "$S/pki/ca.crt" --cert "$S/pki/admin.crt" --key "$S/pki/admin.key" "$1")" = ok ]
}
insecure_ok() { [ "$(curl -ksS --max-time 2 "$1")" = ok ]; }
KUBECTL=("$KUBEBINS/kubectl" --kubeconfig "$S/kubeconfig")

# --- etcd ------------------------------------------------------------------------------
t="$(now_s)"
start etcd "$KUBEBINS/etcd" --name sluice-test --data-dir "$S/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "sluice-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --quota-backend-bytes=4294967296 --log-level=warn
wait_for etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
log "etcd ready in $(elapsed "$t")s (port $ETCD_PORT)"

# --- kube-apiserver ------------------------------------------------------------------------
t="$(now_s)"
start kube-apiserver "$KUBEBINS/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --secure-port "$API_PORT" \
  --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
  --tls-cert-file "$S/pki/apiserver.crt" --tls-private-key-file "$S/pki/apiserver.key" \
  --client-ca-file "$S/pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$S/pki/sa.pub" --service-account-signing-key-file "$S/pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --authorization-mode RBAC --allow-privileged=true --profiling=false
wait_for kube-apiserver https_ok "https://127.0.0.1:$API_PORT/readyz"
log "kube-apiserver ready in $(elapsed "$t")s (port $API_PORT)"

if [ "$STAGE" = all ]; then
  # --- kube-controller-manager -------------------------------------------------------------
  t="$(now_s)"
  start kube-controller-manager "$KUBEBINS/kube-controller-manager" \
    --kubeconfig "$S/kubeconfig" --authentication-kubeconfig "$S/kubeconfig" \
    --authorization-kubeconfig "$S/kubeconfig" \
    --leader-elect=false --controllers='*' \
    --service-account-private-key-file "$S/pki/sa.key" --root-ca-file "$S/pki/ca.crt" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --profiling=false
  wait_for kube-controller-manager insecure_ok "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-controller-manager "${KUBECTL[@]}" get serviceaccount default -n default
  log "kube-controller-manager ready in $(elapsed "$t")s (port $KCM_PORT)"

  # --- kube-scheduler -------------------------------------------------------------------------
  t="$(now_s)"
  cat > "$S/scheduler.yaml" <<EOF2
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: "$S/kubeconfig"}
leaderElection: {leaderElect: false}
EOF2
  start kube-scheduler "$KUBEBINS/kube-scheduler" --config "$S/scheduler.yaml" \
    --authentication-kubeconfig "$S/kubeconfig" --authorization-kubeconfig "$S/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT"
  wait_for kube-scheduler insecure_ok "https://127.0.0.1:$SCHED_PORT/healthz"
  log "kube-scheduler ready in $(elapsed "$t")s (port $SCHED_PORT)"

  # --- kwok and its fake node -----------------------------------------------------------------
  t="$(now_s)"
  stage_args=()
  # kwok's own "fast" set: kustomize/stage/fast = node/fast + node/heartbeat-with-lease + pod/fast.
  for f in "$KUBEBINS"/kwok-stages/node/fast/*.yaml "$KUBEBINS"/kwok-stages/node/heartbeat-with-lease/*.yaml \
           "$KUBEBINS"/kwok-stages/pod/fast/*.yaml; do
    stage_args+=(--config "$f")
  done
  start kwok "$KUBEBINS/kwok" --kubeconfig "$S/kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/18 --node-ip=10.244.64.1 \
    --server-address "127.0.0.1:$KWOK_PORT" "${stage_args[@]}"
  wait_for kwok curl -fsS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz"
  "${KUBECTL[@]}" apply -f - >/dev/null <<'EOF2' || die "creating the kwok node failed"
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec:
  providerID: kwok://kwok-node-0
status:
  capacity: {cpu: "64", memory: 256Gi, pods: "500"}
  allocatable: {cpu: "64", memory: 256Gi, pods: "500"}
EOF2
  node_ready() {
    [ "$("${KUBECTL[@]}" get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
  }
  wait_for kwok node_ready
  log "kwok and node kwok-node-0 ready in $(elapsed "$t")s"
fi

cat > "$S/env" <<EOF2
# Written by tests/cluster/up.sh: source it, or read it from tests.
export KUBECONFIG=$S/kubeconfig
export SLUICE_STATE=$S
export SLUICE_KUBEBINS=$KUBEBINS
export SLUICE_CLUSTER_STAGE=$STAGE
export SLUICE_APISERVER=https://127.0.0.1:$API_PORT
export PATH=$KUBEBINS:\$PATH
EOF2
log "control plane up ($STAGE); env in $S/env"
