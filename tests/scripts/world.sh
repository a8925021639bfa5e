#!/usr/bin/env bash
# Brings up Sluice on a running local control plane, inside its test network: the operator
# and one data plane per set as local processes (standing in for the pods, same arguments,
# each on its own address), example apps, the quickstart and the walkthrough. Used by
# `make demo` and by the end-to-end test.
#   SLUICE_STATE=... world.sh      (the control plane's env file must exist there)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/cluster/lib.sh"
S="$SLUICE_STATE"
# shellcheck disable=SC1091
. "$S/env"
BIN="${SLUICE_BIN_DIR:-$ROOT/target/debug}"
W="$S/world"
mkdir -p "$W/certs" "$S/logs" "$S/pids"
k() { kubectl "$@"; }

start_bg() { # start_bg NAME CMD...: a process that down.sh stops by its recorded PID
  local name="$1"; shift
  mkdir -p "$S/cmds"
  printf '%s\0' "$@" > "$S/cmds/$name"   # component.sh can restart it the same way
  setsid "$@" >>"$S/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$S/pids/$name"
}
wait_for() { # wait_for WHAT SECONDS CMD...
  local what="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
    sleep 0.3
  done
}

t="$(now_s)"
# --- API, RBAC, the operator --------------------------------------------------------------
k apply --server-side -f "$ROOT/config/default/namespace.yaml" >/dev/null
k apply --server-side -k "$ROOT/config/crd" >/dev/null
k wait --for=condition=Established crd/ingresscontrollersets.sluice.dev --timeout=60s >/dev/null
k apply --server-side -k "$ROOT/config/rbac" >/dev/null
OP_ADMIN_PORT=10300
start_bg sluice-operator "$BIN/sluice-operator" --kubeconfig "$KUBECONFIG" \
  --dataplane-image ghcr.io/sluice-dev/sluice:latest --admin-address "127.0.0.1:$OP_ADMIN_PORT" \
  --lease-namespace sluice-system
wait_for "operator /healthz" 30 curl -fsS "http://127.0.0.1:$OP_ADMIN_PORT/healthz"

# --- certificates: Secret `public` for public.example.com, gamma's own ---------------------
(
  cd "$W/certs"
  if [ ! -f public.crt ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -keyout ca.key -out ca.crt -subj "/CN=Sluice demo CA" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout public.key -out public.csr \
      -subj "/CN=public.example.com" >/dev/null 2>&1
    printf 'subjectAltName=DNS:public.example.com\n' > public.ext
    openssl x509 -req -in public.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile public.ext -out public.crt >/dev/null 2>&1
    # gamma terminates its own TLS with a certificate (from its own CA) Sluice never sees.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -keyout gamma-ca.key -out gamma-ca.crt -subj "/CN=gamma's own CA" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gamma.key -out gamma.csr \
      -subj "/CN=gamma.public.example.com" >/dev/null 2>&1
    printf 'subjectAltName=DNS:gamma.public.example.com\n' > gamma.ext
    openssl x509 -req -in gamma.csr -CA gamma-ca.crt -CAkey gamma-ca.key -CAcreateserial -days 30 \
      -extfile gamma.ext -out gamma.crt >/dev/null 2>&1
  fi
)
k create secret tls public -n default --cert="$W/certs/public.crt" --key="$W/certs/public.key" \
  --dry-run=client -o yaml | k apply --server-side -f - >/dev/null

# --- the apps: local processes published as selector-less Services + EndpointSlices -------------
publish() { # publish NAMESPACE NAME PORT ADDRESS
  k apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: $2, namespace: $1}
spec:
  ports: [{name: http, port: $3, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $2-demo
  namespace: $1
  labels: {kubernetes.io/service-name: $2, endpointslice.kubernetes.io/managed-by: sluice-demo}
addressType: IPv4
endpoints: [{addresses: ["$4"], conditions: {ready: true}}]
ports: [{name: http, port: 8080, protocol: TCP}]
YAML
}
k create namespace shop --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
start_bg echo-alpha "$BIN/sluice-echo" --name alpha --listen 10.244.130.1:8080
start_bg echo-beta "$BIN/sluice-echo" --name beta --listen 10.244.130.2:8080
start_bg echo-gamma "$BIN/sluice-echo" --name gamma --listen 10.244.130.3:8080 \
  --cert "$W/certs/gamma.crt" --key "$W/certs/gamma.key"
start_bg echo-web "$BIN/sluice-echo" --name web --listen 10.244.130.4:8080
start_bg echo-admin "$BIN/sluice-echo" --name admin --listen 10.244.130.5:8080
publish default alpha 8080 10.244.130.1
publish default beta 8080 10.244.130.2
publish default gamma 8080 10.244.130.3
publish shop web 80 10.244.130.4
publish shop admin 80 10.244.130.5

# --- the examples ----------------------------------------------------------------------------
k apply --server-side -k "$ROOT/examples/quickstart" >/dev/null
k apply --server-side -k "$ROOT/examples/walkthrough" >/dev/null

# --- one data plane per set, on its own address; the "cloud" gives each LB that address ------
i=0
while read -r set class ip; do
  i=$((i + 1))
  wait_for "ConfigMap sluice-system/$set" 60 k get configmap -n sluice-system "$set"
  start_bg "dataplane-$set" "$BIN/sluice-dataplane" --kubeconfig "$KUBECONFIG" \
    --ingress-class "$class" --config-map "sluice-system/$set" --publish-service "sluice-system/$set" \
    --bind-address "$ip" --http-port 80 --https-port 443 --admin-port 10254 \
    --debug-port $((10400 + i))
  wait_for "Service sluice-system/$set" 60 k get service -n sluice-system "$set"
  k patch service -n sluice-system "$set" --subresource=status --type=merge \
    -p "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"$ip\"}]}}}" >/dev/null
  wait_for "data plane $set ready" 60 curl -fsS "http://$ip:10254/readyz"
done <<SETS
ingress-public public 10.244.200.1
ingress-private private 10.244.200.2
ingress-default default 10.244.200.3
SETS

k wait ics --all -n sluice-system --for=condition=Ready --timeout=120s >/dev/null \
  || die "sets not Ready: $(k get ics -n sluice-system)"
for ing in shop/web shop/admin default/alpha-beta default/gamma; do
  wait_for "address on Ingress $ing" 60 bash -c \
    "[ -n \"\$(kubectl get ingress -n ${ing%/*} ${ing#*/} -o jsonpath='{.status.loadBalancer.ingress[0].ip}')\" ]"
done
log "TIMING world up: $(elapsed "$t")s"

cat > "$W/curl.txt" <<TXT
# public fleet (class public, 10.244.200.1) and private fleet (class private, 10.244.200.2)
curl -s -H 'Host: shop.example.com' http://10.244.200.1/
curl -s -H 'Host: admin.shop.internal' http://10.244.200.2/
# the walkthrough (class default, 10.244.200.3): TLS with Secret public, /alpha and /beta
curl -s --cacert $W/certs/ca.crt --resolve public.example.com:443:10.244.200.3 https://public.example.com/alpha
curl -s --cacert $W/certs/ca.crt --resolve public.example.com:443:10.244.200.3 https://public.example.com/beta
curl -s --cacert $W/certs/ca.crt --resolve public.example.com:443:10.244.200.3 https://public.example.com/wrong
# gamma terminates its own TLS (passthrough): trust gamma's certificate, not Sluice's
curl -s --cacert $W/certs/gamma-ca.crt --resolve gamma.public.example.com:443:10.244.200.3 https://gamma.public.example.com/
# what each fleet serves, and what Kubernetes says
$BIN/sluice-dataplane snapshot --debug-port 10403
kubectl get ics -n sluice-system
kubectl get ingress -A
TXT
