#!/usr/bin/env bash
# `make bench` (after run.sh): TLS handshakes, HTTP/2 over TLS, memory with idle keep-alive
# connections and open-loop latency, Sluice against Debian's nginx and HAProxy measured in the
# same run, inside a network namespace of its own (method: ../shared/docs/benchmarks.md).
#   tests/bench/protocols.sh   (adds its section to $BENCH_OUT/bench-report.md, raw numbers in
#                               $BENCH_OUT/protocols-raw.txt, the section alone in protocols-report.md)
# Each proxy alone on core 1 with one worker; backend (nginx) and load generators on core 0.
#   handshakes  `openssl s_time -new` (a new connection and a full TLS 1.3 handshake per
#               connection, never resumed; then close_notify, or with `-www /0` one HTTP/1.0 GET
#               of a 0-byte body first), BENCH_TLS_CLIENTS of them in parallel; server CPU per
#               handshake
#   http2       h2load over TLS (ALPN h2), BENCH_H2_CONNECTIONS x BENCH_H2_STREAMS; CPU per request
#   memory      VmRSS idle, then holding BENCH_IDLE_CONNECTIONS idle keep-alive connections
#               (tests/bench/idle_conns.py: one request each, then kept open)
#   latency     p50/p99/p99.9 of `oha -q R --latency-correction` (open loop), R = half the
#               weakest proxy's maximum for the 1 KiB body, measured with oha closed-loop
# Every TLS client here is OpenSSL 3.0 pinned by an OpenSSL config to TLS 1.3 and X25519;
# the servers keep their defaults otherwise (rustls would prefer X25519MLKEM768).
# Knobs: BENCH_ROUNDS (3), BENCH_DURATION (10 s per measured run), BENCH_CONNECTIONS (50, for
# oha), BENCH_TLS_CLIENTS (4), BENCH_H2_CONNECTIONS (50), BENCH_H2_STREAMS (10),
# BENCH_H2_BODIES ("0 1k"), BENCH_IDLE_CONNECTIONS (10000), BENCH_WARMUP (2 s), BENCH_PERF (1:
# after the measured runs, `perf record` Sluice during one handshake and one HTTP/2 run and keep
# the top of `perf report` in protocols-perf-sluice-*.txt), BENCH_BASELINE (an older
# sluice-dataplane binary, measured in the same run as "baseline": before and after a change),
# BENCH_SLICE_AB (N: only Sluice's open-loop latency with its 0.1 ms slice and the default, N
# rounds each, alternating; prints slice-ab.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/cluster/lib.sh"
. "$ROOT/tests/bench/lib.sh"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
OHA_VERSION=1.16.0
OHA_ROOT="$SLUICE_CACHE/tools/oha-$OHA_VERSION"
OHA="$OHA_ROOT/bin/oha"

if [ "${SLUICE_NETNS:-}" != 1 ]; then
  # Outside: install the peers and tools, build, then re-enter inside a fresh namespace.
  for p in nginx haproxy nghttp2-client sysstat; do
    dpkg -s "$p" >/dev/null 2>&1 || { log "installing $p"; apt-get install -y -q "$p" >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q "$p" >/dev/null; }; }
  done
  systemctl stop nginx haproxy >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
  if [ ! -x "$OHA" ]; then
    log "installing oha $OHA_VERSION into $OHA_ROOT"
    cargo install oha --version "$OHA_VERSION" --locked --root "$OHA_ROOT" >"$OUT/oha-install.log" 2>&1 \
      || die "cargo install oha failed, see $OUT/oha-install.log"
  fi
  "$ROOT/tests/cluster/build.sh" stage1
  (cd "$ROOT" && make release)
  exec "$ROOT/tests/cluster/netns.sh" "$0" "$@"
fi

export SLUICE_STATE="$OUT/protocols-state"
ulimit -n "$(ulimit -Hn)"
# Only this namespace's settings: room for the handshake runs' many short connections.
sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
W="$OUT/protocols-work"
trap 'awk "{print \$2}" "$W/pids" 2>/dev/null | xargs -r kill 2>/dev/null; kill $(jobs -p) 2>/dev/null; "$ROOT/tests/cluster/down.sh" --quiet || true' EXIT
"$ROOT/tests/cluster/up.sh" stage1 >/dev/null
# shellcheck source=/dev/null
. "$SLUICE_STATE/env"
rm -rf "$W"; mkdir -p "$W/www" "$W/tls"
BACKEND=10.244.128.10 PROXY=10.244.128.20 HOST=bench.test
ROUNDS="${BENCH_ROUNDS:-3}" DURATION="${BENCH_DURATION:-10}" CONNS="${BENCH_CONNECTIONS:-50}"
WARMUP="${BENCH_WARMUP:-2}" TLS_CLIENTS="${BENCH_TLS_CLIENTS:-4}"
H2_CONNS="${BENCH_H2_CONNECTIONS:-50}" H2_STREAMS="${BENCH_H2_STREAMS:-10}" H2_BODIES="${BENCH_H2_BODIES:-0 1k}"
IDLE="${BENCH_IDLE_CONNECTIONS:-10000}" PERF="${BENCH_PERF:-1}"
RAW="$OUT/protocols-raw.txt"; : > "$RAW"
raw() { echo "$*" | tee -a "$RAW" >&2; }
raw "# $(date -u +%FT%TZ) $(nproc) cores; rounds=$ROUNDS duration=$DURATION conns=$CONNS tls_clients=$TLS_CLIENTS h2=${H2_CONNS}x$H2_STREAMS idle=$IDLE"
raw "loadavg_start $(cut -d' ' -f1-3 /proc/loadavg)"
sluice="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- dataplane crds || echo +uncommitted)"
raw "versions sluice=$sluice nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///') haproxy=$(haproxy -v | awk 'NR==1{print $3}') openssl=$(openssl version | awk '{print $2}') h2load=$(h2load --version | awk '{print $2}') oha=$OHA_VERSION"

# --- one ECDSA P-256 certificate for every server; clients pinned to TLS 1.3 + X25519 -------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$HOST" \
  -addext "subjectAltName=DNS:$HOST" -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" 2>/dev/null
cat "$W/tls/cert.pem" "$W/tls/key.pem" > "$W/tls/bench.pem"   # HAProxy's crt format
FINGERPRINT="$(openssl x509 -in "$W/tls/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)"
cat > "$W/client-openssl.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_module
[ssl_module]
system_default = tls_defaults
[tls_defaults]
MinProtocol = TLSv1.3
Groups = X25519
CNF
CLIENT=(env OPENSSL_CONF="$W/client-openssl.cnf")   # prefixes every OpenSSL client: s_time, s_client, h2load

# --- backend: nginx serving fixed bodies, on core 0 -----------------------------------------
head -c 0 /dev/zero > "$W/www/0"; head -c 1024 /dev/zero | tr '\0' a > "$W/www/1k"
head -c 16384 /dev/zero | tr '\0' a > "$W/www/16k"
cat > "$W/backend.conf" <<NGX
worker_processes 1; daemon off; pid $W/backend.pid; error_log $W/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen $BACKEND:8080; root $W/www; location / { default_type text/plain; } } }
NGX
taskset -c 0 nginx -c "$W/backend.conf" -p "$W" >"$W/backend.out" 2>&1 &

# --- nginx: plain 8081, TLS + h2 8444; tickets and session cache off; room for the idle test --
cat > "$W/nginx-proxy.conf" <<NGX
worker_processes 1; daemon off; pid $W/nginx-proxy.pid; error_log $W/nginx-proxy.err;
worker_rlimit_nofile $(ulimit -n);
events { worker_connections $((IDLE + 1000)); }
http { access_log off; keepalive_requests 1000000;
  upstream be { server $BACKEND:8080; keepalive 128; }
  server { listen $PROXY:8081; listen $PROXY:8444 ssl http2;
    ssl_certificate $W/tls/cert.pem; ssl_certificate_key $W/tls/key.pem; ssl_protocols TLSv1.3;
    ssl_session_tickets off; ssl_session_cache off;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
# --- HAProxy: plain 8082, TLS + h2 8445 --------------------------------------------------------
# maxconn: its FD estimate (2 per connection) does not fit the hard ulimit -n (20000 here) for
# 10k, but idle keep-alive client connections hold no server connection: `no strict-limits`
# lets it start with the FDs there are (it still logs an ALERT about it).
cat > "$W/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn $((IDLE + 500))
  ulimit-n $(ulimit -n)
  no strict-limits
  tune.ssl.cachesize 0
defaults
  mode http
  maxconn $((IDLE + 500))
  timeout connect 5s
  timeout client 120s
  timeout server 60s
  http-reuse always
frontend fe
  bind $PROXY:8082
  bind $PROXY:8445 ssl crt $W/tls/bench.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3 no-tls-tickets
  default_backend be
backend be
  server b1 $BACKEND:8080
HAP

# --- Sluice: the Ingress through the API server; its certificate as the operator would mirror it,
# and the same Secret as the set's defaultSslCertificate (served to clients without SNI: s_time).
MIRROR="$(python3 - <<'PY'
h = 0xcbf29ce484222325  # sluice_crds::mirror::mirror_name("fleet", "bench", "bench-tls")
for b in b"bench/bench-tls":
    h = ((h ^ b) * 0x100000001b3) % (1 << 64)
print(f"fleet-m-{h:016x}")
PY
)"
kubectl create namespace bench >/dev/null
kubectl create secret tls bench-tls -n bench --cert "$W/tls/cert.pem" --key "$W/tls/key.pem" >/dev/null
ORIGIN_VERSION="$(kubectl get secret bench-tls -n bench -o jsonpath='{.metadata.resourceVersion}')"
indent() { sed 's/^/    /' "$1"; }
kubectl apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: $MIRROR
  namespace: bench
  labels:
    sluice.dev/mirror: "true"
    app.kubernetes.io/name: sluice-dataplane
    app.kubernetes.io/managed-by: sluice-operator
    sluice.dev/set: fleet
    sluice.dev/set-namespace: bench
  annotations:
    sluice.dev/origin: bench/bench-tls
    sluice.dev/origin-resource-version: "$ORIGIN_VERSION"
stringData:
  tls.crt: |
$(indent "$W/tls/cert.pem")
  tls.key: |
$(indent "$W/tls/key.pem")
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: bench}
spec:
  controller: sluice.dev/ingress-controller
  parameters: {apiGroup: sluice.dev, kind: IngressControllerSet, name: fleet, namespace: bench, scope: Namespace}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fleet, namespace: bench}
data:
  fleet.json: '{"setNamespace":"bench","setName":"fleet","ingressClassName":"bench"}'
  config.json: '{"hsts":false,"defaultSslCertificate":"bench-tls"}'
---
apiVersion: v1
kind: Service
metadata: {name: be, namespace: bench}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: be-1, namespace: bench, labels: {kubernetes.io/service-name: be}}
addressType: IPv4
endpoints: [{addresses: ["$BACKEND"], conditions: {ready: true}}]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench, namespace: bench}
spec:
  ingressClassName: bench
  tls: [{hosts: [$HOST], secretName: bench-tls}]
  defaultBackend: {service: {name: be, port: {number: 80}}}
  rules:
  - host: $HOST
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: be, port: {number: 80}}}}]}
  - http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: be, port: {number: 80}}}}]}
YAML

start_proxy() { # start_proxy NAME -> echoes PID
  case "$1" in
    nginx) taskset -c 1 nginx -c "$W/nginx-proxy.conf" -p "$W" >"$W/nginx-proxy.out" 2>&1 & echo $! ;;
    haproxy) taskset -c 1 haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.out" 2>&1 & echo $! ;;
    sluice) start_sluice "$ROOT/target/release/sluice-dataplane" 8083 8443 10254 "$W/sluice.log" ;;
    baseline) start_sluice "$BASELINE" 8084 8446 10255 "$W/baseline.log" ;;
  esac
}
http_port() { case "$1" in nginx) echo 8081 ;; haproxy) echo 8082 ;; sluice) echo 8083 ;; baseline) echo 8084 ;; esac; }
tls_port() { case "$1" in nginx) echo 8444 ;; haproxy) echo 8445 ;; sluice) echo 8443 ;; baseline) echo 8446 ;; esac; }
pid_of() { awk -v p="$1" '$1==p{print $2}' "$W/pids"; }
# shellcheck disable=SC2046  # one PID per word
procs() { echo "$1" $(pgrep -P "$1" || true); }   # the proxy and its children (nginx's worker)
cpu_ticks() { # utime + stime in clock ticks of a proxy and its children
  local total=0 p
  for p in $(procs "$1"); do total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$total"
}
rss_kib() { # VmRSS summed over the proxy and its children (nginx: master + worker)
  local total=0 p
  for p in $(procs "$1"); do total=$((total + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
  echo "$total"
}
HZ="$(getconf CLK_TCK)"
now() { date +%s.%N; }
# mpstat over a measured run: busy % of core 0 (load) and core 1 (proxy), to see which saturated.
mpstat_start() { LC_ALL=C mpstat -P 0,1 1 >"$W/mpstat.out" 2>/dev/null & echo $!; }
mpstat_stop() { # mpstat_stop PID -> "core0=B0 core1=B1" (mean busy %)
  kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true
  awk '$2 ~ /^[01]$/ {busy[$2] += 100 - $NF; n[$2]++}
       END {printf "core0=%.0f core1=%.0f", n[0] ? busy[0]/n[0] : -1, n[1] ? busy[1]/n[1] : -1}' "$W/mpstat.out"
}

for proxy in "${PROXIES[@]}"; do
  pid="$(start_proxy "$proxy")"
  echo "$proxy $pid" >> "$W/pids"
  ok=
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "http://$PROXY:$(http_port "$proxy")/1k" 2>/dev/null \
      && curl -fsSk -o /dev/null --resolve "$HOST:$(tls_port "$proxy"):$PROXY" "https://$HOST:$(tls_port "$proxy")/1k" 2>/dev/null; then
      ok=1; break
    fi
    sleep 0.2
  done
  [ -n "$ok" ] || { tail -20 "$W"/*.out "$W/sluice.log" >&2; die "$proxy did not answer on $(http_port "$proxy") and $(tls_port "$proxy")"; }
done
sleep 1

# --- what each server negotiates with the pinned clients (recorded in the report) -------------
for proxy in "${PROXIES[@]}"; do
  for sni in none "$HOST"; do
    args=(-connect "$PROXY:$(tls_port "$proxy")" -msg -ign_eof -showcerts)
    [ "$sni" = none ] && args+=(-noservername) || args+=(-servername "$sni")
    out="$(printf 'GET /0 HTTP/1.0\r\n\r\n' | timeout 10 "${CLIENT[@]}" openssl s_client "${args[@]}" 2>&1 || true)"
    group="$(awk -F': ' '/Server Temp Key/{split($2, a, ","); print a[1]; exit}' <<<"$out")"
    cipher="$(awk '/^New, /{print $NF; exit}' <<<"$out")"
    proto="$(awk '/^New, /{sub(",", "", $2); print $2; exit}' <<<"$out")"
    tickets="$(grep -c 'NewSessionTicket' <<<"$out" || true)"
    fp="$(openssl x509 -noout -fingerprint -sha256 2>/dev/null <<<"$out" | cut -d= -f2)"
    [ "$fp" = "$FINGERPRINT" ] && cert=same || cert=OTHER
    raw "tls proxy=$proxy sni=$sni protocol=${proto:-?} cipher=${cipher:-?} group=${group:-?} tickets=$tickets cert=$cert"
    { [ "$cert" = same ] && [ "$group" = X25519 ] && [ "$proto" = TLSv1.3 ]; } \
      || die "$proxy (SNI $sni) did not negotiate TLS 1.3 + X25519 with the bench certificate"
  done
done

# --- memory: idle, then holding $IDLE idle keep-alive connections ------------------------------
for proxy in "${PROXIES[@]}"; do
  pid="$(pid_of "$proxy")" port="$(http_port "$proxy")"
  idle_rss="$(rss_kib "$pid")"
  rm -f "$W/ready"
  taskset -c 0 python3 "$ROOT/tests/bench/idle_conns.py" "$PROXY" "$port" "$IDLE" /0 "$W/ready" 2>"$W/idle-$proxy.err" &
  client=$!
  for _ in $(seq 1 600); do [ -s "$W/ready" ] && break; sleep 0.2; done
  opened="$(cat "$W/ready" 2>/dev/null || echo 0)"
  # Held idle, memory settles: read it once two readings a second apart are within 1% (a
  # proxy that frees the first request's buffers or returns freed pages later counts as it
  # ends up), at most 10 s after the last connection opened.
  loaded_rss="$(rss_kib "$pid")" settled=0
  for settled in $(seq 1 10); do
    sleep 1
    prev="$loaded_rss" loaded_rss="$(rss_kib "$pid")"
    [ $(( (prev > loaded_rss ? prev - loaded_rss : loaded_rss - prev) * 100 )) -lt "$loaded_rss" ] && break
  done
  held="$(ss -Htn state established "( sport = :$port )" | wc -l)"
  worker=""
  [ "$proxy" = nginx ] && worker=" worker_rss_kib=$(awk '/^VmRSS:/{print $2}' "/proc/$(pgrep -P "$pid" | head -1)/status")"
  kill "$client" 2>/dev/null; wait "$client" 2>/dev/null || true
  raw "memory proxy=$proxy idle_rss_kib=$idle_rss loaded_rss_kib=$loaded_rss opened=$opened held=$held settled_s=$settled$worker"
  sleep 1
done

# --- run kinds ------------------------------------------------------------------------------------
handshakes() { # handshakes PROXY SECONDS [PATH] -> "connections bytes_per_conn wall_s" over TLS_CLIENTS parallel s_time
  local proxy="$1" secs="$2" i t0 pids=() www=()
  [ -n "${3:-}" ] && www=(-www "$3")   # without: handshake, close_notify, close
  t0="$(now)"
  for i in $(seq 1 "$TLS_CLIENTS"); do
    taskset -c 0 "${CLIENT[@]}" openssl s_time -connect "$PROXY:$(tls_port "$proxy")" -new -time "$secs" "${www[@]}" >"$W/s_time.$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  cat "$W"/s_time.* | awk -v w="$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')" \
    '/real seconds/ {c += $1; b += $(NF-4) * $1} END {printf "%d %.0f %.2f\n", c, c ? b/c : 0, w}'
}
run_handshake() { # run_handshake PROXY [PATH] -> raw line fields
  local proxy="$1" path="${2:-}" pid t0 t1 m out
  pid="$(pid_of "$proxy")"
  handshakes "$proxy" "$WARMUP" "$path" >/dev/null
  m="$(mpstat_start)"; t0="$(cpu_ticks "$pid")"
  out="$(handshakes "$proxy" "$DURATION" "$path")"
  t1="$(cpu_ticks "$pid")"
  read -r n bytes wall <<<"$out"
  { [ "$n" -gt 0 ] && { [ -z "$path" ] || [ "$bytes" -gt 0 ]; }; } || die "$proxy: no handshakes completed ($(tail -3 "$W/s_time.1"))"
  awk -v n="$n" -v a="$t0" -v b="$t1" -v hz="$HZ" -v w="$wall" -v by="$bytes" -v m="$(mpstat_stop "$m")" \
    'BEGIN{printf "rate=%.0f cpu_us=%.1f n=%d bytes=%d %s\n", n/w, (b-a)/hz*1e6/n, n, by, m}'
}
h2() { # h2 PROXY BODY SECONDS -> h2load output
  taskset -c 0 "${CLIENT[@]}" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$3" --groups=X25519 \
    --connect-to="$PROXY:$(tls_port "$1")" "https://$HOST:$(tls_port "$1")/$2" 2>&1
}
run_h2() {
  local proxy="$1" body="$2" pid t0 t1 m out
  pid="$(pid_of "$proxy")"
  h2 "$proxy" "$body" "$WARMUP" >/dev/null
  m="$(mpstat_start)"; t0="$(cpu_ticks "$pid")"
  out="$(h2 "$proxy" "$body" "$DURATION")"
  t1="$(cpu_ticks "$pid")"
  echo "$out" > "$W/h2load-$proxy-$body.out"
  grep -q 'Application protocol: h2' <<<"$out" || die "$proxy: h2load did not negotiate h2: $(tail -5 <<<"$out")"
  echo "$out" | awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v m="$(mpstat_stop "$m")" '
    /^finished in/ {rps = $4}
    /^requests:/ {done = $6; ok = $8; failed = $10; errored = $12}
    END {printf "rps=%.0f cpu_us=%.2f done=%d ok=%d failed=%d errored=%d %s\n", rps, (b-a)/hz*1e6/(done ? done : 1), done, ok, failed, errored, m}'
}
oha_max() { # oha_max PROXY -> req/s for 1k, closed loop with oha itself
  # oha, not wrk: the open-loop run uses oha, which needs more CPU per request than wrk on the
  # core it shares with the backend; half of wrk's maximum saturated that core.
  local port; port="$(http_port "$1")"
  taskset -c 0 "$OHA" -z "${WARMUP}s" -c"$CONNS" --no-tui "http://$PROXY:$port/1k" >/dev/null 2>&1
  taskset -c 0 "$OHA" -z "${DURATION}s" -c"$CONNS" --no-tui --output-format json "http://$PROXY:$port/1k" \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["summary"]["requestsPerSec"]))'
}
run_latency() { # run_latency PROXY RATE
  local proxy="$1" rate="$2" port pid t0 t1 m
  port="$(http_port "$proxy")" pid="$(pid_of "$proxy")"
  taskset -c 0 "$OHA" -z "${WARMUP}s" -c"$CONNS" -q "$rate" --latency-correction --no-tui "http://$PROXY:$port/1k" >/dev/null 2>&1
  m="$(mpstat_start)"; t0="$(cpu_ticks "$pid")"
  taskset -c 0 "$OHA" -z "${DURATION}s" -c"$CONNS" -q "$rate" --latency-correction --no-tui --output-format json \
    "http://$PROXY:$port/1k" > "$W/oha-$proxy.json" 2>"$W/oha-$proxy.err" || true
  t1="$(cpu_ticks "$pid")"
  python3 - "$W/oha-$proxy.json" "$((t1 - t0))" "$HZ" "$(mpstat_stop "$m")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ticks, hz, cores = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
p = d["latencyPercentiles"]; s = d["summary"]
codes = d.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k.startswith("2")); total = sum(codes.values())
# Requests still in flight when -z ends are "aborted due to deadline": counted apart, not errors.
errors = d.get("errorDistribution", {})
cut = errors.pop("aborted due to deadline", 0)
print(f"p50_ms={p['p50']*1e3:.3f} p99_ms={p['p99']*1e3:.3f} p999_ms={p['p99.9']*1e3:.3f} "
      f"rps={s['requestsPerSec']:.0f} cpu_us={ticks / hz * 1e6 / max(total, 1):.2f} non2xx={total-ok} "
      f"errors={sum(errors.values())} cut_at_end={cut} {cores}")
PY
}

# --- latency rate: half the weakest proxy's maximum (1 KiB, oha closed loop) -------------------
min_rps=
for proxy in "${PROXIES[@]}"; do
  r="$(oha_max "$proxy")"
  raw "max proxy=$proxy body=1k rps=$r"
  [ "$proxy" = baseline ] && continue   # the rate is set by the three proxies compared
  if [ -z "$min_rps" ] || [ "$r" -lt "$min_rps" ]; then min_rps="$r"; fi
done
RATE=$((min_rps / 2))
raw "latency_rate $RATE"

# BENCH_SLICE_AB=N: instead of the comparison, N rounds of Sluice alone at RATE, open loop,
# with its threads' time slice set from outside to the 0.1 ms it asks for (sched.rs) and back to
# the kernel's default, alternating: the same binary, so only the slice differs.
if [ -n "${BENCH_SLICE_AB:-}" ]; then
  pid="$(pid_of sluice)"
  for round in $(seq 1 "$BENCH_SLICE_AB"); do
    for slice in 100000 0; do
      python3 "$ROOT/tests/bench/set_slice.py" "$pid" "$slice"
      r="$(run_latency sluice "$RATE")"
      raw "round=$round kind=slice_ab slice_ns=$(awk '/se.slice/{print $3}' "/proc/$pid/sched") $r"
    done
  done
  grep 'kind=slice_ab' "$RAW" | python3 -c '
import collections, statistics, sys
d = collections.defaultdict(list)
for line in sys.stdin:
    f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    d[int(f["slice_ns"])].append(f)
for s, runs in sorted(d.items()):
    med = {k: statistics.median(float(r[k]) for r in runs) for k in ("p50_ms", "p99_ms", "p999_ms", "cpu_us")}
    each = ", ".join(r["p99_ms"] for r in runs)
    print("slice %.1f ms: p50 %.3f  p99 %.3f (each: %s)  p99.9 %.3f ms  CPU %.2f us/request, medians of %d"
          % (s / 1e6, med["p50_ms"], med["p99_ms"], each, med["p999_ms"], med["cpu_us"], len(runs)))
' | tee "$OUT/slice-ab.txt"
  exit 0
fi

order=("${PROXIES[@]}")
for round in $(seq 1 "$ROUNDS"); do
  # (assigned first, so that a failed run stops the script under set -e)
  for proxy in "${order[@]}"; do r="$(run_handshake "$proxy")"; raw "round=$round kind=handshake proxy=$proxy $r"; done
  for proxy in "${order[@]}"; do r="$(run_handshake "$proxy" /0)"; raw "round=$round kind=handshake_get proxy=$proxy $r"; done
  for body in $H2_BODIES; do
    for proxy in "${order[@]}"; do r="$(run_h2 "$proxy" "$body")"; raw "round=$round kind=h2 body=$body proxy=$proxy $r"; done
  done
  for proxy in "${order[@]}"; do r="$(run_latency "$proxy" "$RATE")"; raw "round=$round kind=latency proxy=$proxy $r"; done
  order=("${order[@]:1}" "${order[0]}")   # rotate who goes first
done
raw "loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)"

# --- where Sluice spends its CPU (not measured runs: perf costs CPU itself) ------------------------
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
  pid="$(pid_of sluice)"
  for kind in handshake h2; do
    perf record -F 999 -g -o "$W/perf-$kind.data" -p "$pid" >/dev/null 2>&1 &
    rec=$!
    if [ "$kind" = handshake ]; then handshakes sluice "$DURATION" >/dev/null; else h2 sluice 1k "$DURATION" >/dev/null; fi
    kill -INT "$rec"; wait "$rec" 2>/dev/null || true
    perf report -i "$W/perf-$kind.data" --no-children --percent-limit 0.7 --stdio -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -40 > "$OUT/protocols-perf-sluice-$kind.txt" || true
  done
fi

python3 "$ROOT/tests/bench/protocols_report.py" "$RAW" "$OUT/protocols-report.md" "$OUT/bench-report.md"
