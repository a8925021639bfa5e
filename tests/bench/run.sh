#!/usr/bin/env bash
# `make bench`: the data plane against Debian's nginx and HAProxy, measured in the same run,
# inside a network namespace of its own (see ../shared/docs/benchmarks.md for the method).
#   tests/bench/run.sh            (writes bench-report.md and bench-raw.txt in $BENCH_OUT)
# Primary figure: server CPU time per request (utime+stime of the proxy from /proc) at the
# load generator's rate, with the proxy alone on core 1 and backend + load generator on core 0.
# BENCH_BASELINE=/path/to/an/older/sluice-dataplane also measures that binary in the same run
# ("baseline": before and after a change, side by side with the same peers).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/cluster/lib.sh"
. "$ROOT/tests/bench/lib.sh"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
mkdir -p "$OUT"

if [ "${SLUICE_NETNS:-}" != 1 ]; then
  # Outside: install the peers and tools, build, then re-enter inside a fresh namespace.
  for p in nginx haproxy wrk; do
    dpkg -s "$p" >/dev/null 2>&1 || { log "installing $p"; apt-get install -y -q "$p" >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q "$p" >/dev/null; }; }
  done
  # Debian starts the services it installs; the benchmark runs its own instances.
  systemctl stop nginx haproxy >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
  "$ROOT/tests/cluster/build.sh" stage1
  (cd "$ROOT" && make release && cargo build --locked -p sluice-tests --bin sluice-echo)
  exec "$ROOT/tests/cluster/netns.sh" "$0" "$@"
fi

export SLUICE_STATE="$OUT/state"
ulimit -n "$(ulimit -Hn)"   # HAProxy sizes its FD needs from maxconn; nginx needs them for its connections
# The proxies are started in command substitutions, so they are not jobs of this shell:
# stop them by the PIDs recorded in $W/pids too.
trap 'awk "{print \$2}" "$W/pids" 2>/dev/null | xargs -r kill 2>/dev/null; kill $(jobs -p) 2>/dev/null; "$ROOT/tests/cluster/down.sh" --quiet || true' EXIT
"$ROOT/tests/cluster/up.sh" stage1 >/dev/null
. "$SLUICE_STATE/env"
W="$OUT/work"; rm -rf "$W"; mkdir -p "$W/www"
BACKEND=10.244.128.10 PROXY=10.244.128.20
DURATION="${BENCH_DURATION:-10}" CONNS="${BENCH_CONNECTIONS:-50}" ROUNDS="${BENCH_ROUNDS:-3}"

# --- backend: nginx serving fixed bodies, on core 0 -----------------------------------------
head -c 0 /dev/zero > "$W/www/0"; head -c 1024 /dev/zero | tr '\0' a > "$W/www/1k"
head -c 16384 /dev/zero | tr '\0' a > "$W/www/16k"; head -c 1048576 /dev/zero | tr '\0' a > "$W/www/1m"
cat > "$W/backend.conf" <<NGX
worker_processes 1; daemon off; pid $W/backend.pid; error_log $W/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen $BACKEND:8080; root $W/www; location / { default_type text/plain; } } }
NGX
taskset -c 0 nginx -c "$W/backend.conf" -p "$W" >"$W/backend.out" 2>&1 &

# --- nginx as the proxy (upstream keepalive: without it nginx is 5-20x slower) ---------------------
cat > "$W/nginx-proxy.conf" <<NGX
worker_processes 1; daemon off; pid $W/nginx-proxy.pid; error_log $W/nginx-proxy.err;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 1000000;
  upstream be { server $BACKEND:8080; keepalive 128; }
  server { listen $PROXY:8081; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
# --- HAProxy --------------------------------------------------------------------------------------
cat > "$W/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 5000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind $PROXY:8082
  default_backend be
backend be
  server b1 $BACKEND:8080
HAP

# --- Sluice: one Ingress on the data plane, configured through the API server ----------------------
kubectl create namespace bench >/dev/null
kubectl apply --server-side -f - >/dev/null <<YAML
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
  defaultBackend: {service: {name: be, port: {number: 80}}}
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: be, port: {number: 80}}}}]}}]
YAML

start_proxy() { # start_proxy NAME -> echoes PID
  case "$1" in
    nginx) taskset -c 1 nginx -c "$W/nginx-proxy.conf" -p "$W" >"$W/nginx-proxy.out" 2>&1 & echo $! ;;
    haproxy) taskset -c 1 haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.out" 2>&1 & echo $! ;;
    sluice) start_sluice "$ROOT/target/release/sluice-dataplane" 8083 8443 10254 "$W/sluice.log" ;;
    baseline) start_sluice "$BASELINE" 8084 8446 10255 "$W/baseline.log" ;;
  esac
}
port_of() { case "$1" in nginx) echo 8081 ;; haproxy) echo 8082 ;; sluice) echo 8083 ;; baseline) echo 8084 ;; esac; }
cpu_ticks() { # "utime stime" in clock ticks of a proxy and its children (nginx's worker)
  local user=0 sys=0 p u s
  for p in "$1" $(pgrep -P "$1" || true); do
    read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null || echo 0 0)
    user=$((user + u)); sys=$((sys + s))
  done
  echo "$user $sys"
}
HZ="$(getconf CLK_TCK)"

RAW="$OUT/bench-raw.txt"; : > "$RAW"
for proxy in "${PROXIES[@]}"; do
  pid="$(start_proxy "$proxy")"
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://$PROXY:$(port_of "$proxy")/1k" 2>/dev/null && break; sleep 0.2; done
  echo "$proxy $pid" >> "$W/pids"
done
sleep 1

run_one() { # run_one PROXY BODY -> "rps cpu_us_per_req user_us_per_req kernel_us_per_req"
  local proxy="$1" body="$2" pid port t0 t1 out rps reqs
  pid="$(awk -v p="$1" '$1==p{print $2}' "$W/pids")"; port="$(port_of "$proxy")"
  taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://$PROXY:$port/$body" >/dev/null 2>&1   # warm-up
  t0="$(cpu_ticks "$pid")"
  out="$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://$PROXY:$port/$body")"
  t1="$(cpu_ticks "$pid")"
  reqs="$(echo "$out" | awk '/requests in/{print $1}')"
  rps="$(echo "$out" | awk '/Requests\/sec/{print $2}')"
  echo "$t0 $t1" | awk -v r="$reqs" -v hz="$HZ" -v rps="$rps" '{u=($3-$1)/hz*1e6/r; k=($4-$2)/hz*1e6/r; printf "%.0f %.2f %.2f %.2f\n", rps, u+k, u, k}'
}
direct() { taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://$BACKEND:8080/$1" | awk '/Requests\/sec/{printf "%.0f\n", $2}'; }

order=("${PROXIES[@]}")
for round in $(seq 1 "$ROUNDS"); do
  for body in 0 1k 16k 1m; do
    for proxy in "${order[@]}"; do
      echo "round=$round body=$body proxy=$proxy $(run_one "$proxy" "$body")" | tee -a "$RAW" >&2
    done
    echo "round=$round body=$body proxy=direct $(direct "$body") 0 0 0" | tee -a "$RAW" >&2
  done
  order=("${order[@]:1}" "${order[0]}")   # rotate who goes first
done

python3 - "$RAW" "$OUT/bench-report.md" "$DURATION" "$CONNS" "$ROUNDS" <<'PY'
import sys, statistics, collections
raw, out, dur, conns, rounds = sys.argv[1:6]
d = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(raw):
    f = dict(kv.split("=") for kv in line.split()[:3])
    rps, cpu, user, kernel = line.split()[3:7]
    d[f["body"]][f["proxy"]].append((float(rps), float(cpu), float(user), float(kernel)))
med = lambda xs: statistics.median(xs)
rows = ["| body | sluice µs CPU/req | nginx | HAProxy | sluice/nginx CPU | sluice/HAProxy CPU | sluice req/s | nginx req/s | HAProxy req/s | sluice/direct |",
        "|---|---|---|---|---|---|---|---|---|---|"]
base = any("baseline" in d[body] for body in d)
if base:
    rows[0] += " baseline µs CPU/req | sluice/baseline CPU | baseline/nginx CPU |"
    rows[1] += "---|---|---|"
for body in ["0", "1k", "16k", "1m"]:
    m = {p: (med([x[0] for x in v]), med([x[1] for x in v])) for p, v in d[body].items()}
    s, n, h, dr = m["sluice"], m["nginx"], m["haproxy"], m["direct"]
    row = f"| {body} | {s[1]:.1f} | {n[1]:.1f} | {h[1]:.1f} | {s[1]/n[1]:.2f}x | {s[1]/h[1]:.2f}x | {s[0]:.0f} | {n[0]:.0f} | {h[0]:.0f} | {s[0]/dr[0]:.2f} |"
    if base:
        b = m["baseline"]
        row += f" {b[1]:.1f} | {s[1]/b[1]:.2f}x | {b[1]/n[1]:.2f}x |"
    rows.append(row)
# User and kernel time apart: the kernel's share (the TCP send and receive of both sides of a
# loopback connection run in the sender's system call) is about the same for every proxy, so
# it bounds how far below nginx a proxy can go by its own code.
procs = ["sluice", "nginx", "haproxy"] + (["baseline"] if base else [])
split = ["| body | " + " | ".join(f"{p} user / kernel µs" for p in procs) + " | sluice/nginx user | sluice/nginx kernel |",
         "|---|" + "---|" * len(procs) + "---|---|"]
for body in ["0", "1k", "16k", "1m"]:
    m = {p: (med([x[2] for x in v]), med([x[3] for x in v])) for p, v in d[body].items()}
    s, n = m["sluice"], m["nginx"]
    ratio = lambda a, b: f"{a/b:.2f}x" if b else "-"
    split.append(f"| {body} | " + " | ".join(f"{m[p][0]:.1f} / {m[p][1]:.1f}" for p in procs)
                 + f" | {ratio(s[0], n[0])} | {ratio(s[1], n[1])} |")
text = f"""# Sluice data-plane benchmark

HTTP/1.1 keep-alive, `wrk -t1 -c{conns} -d{dur}s` (closed loop) on core 0 with the nginx backend;
each proxy alone on core 1 with one worker (nginx `worker_processes 1` + upstream keepalive 128,
HAProxy `nbthread 1` + `http-reuse always`, Sluice `TOKIO_WORKER_THREADS=1`, access log off).
CPU per request = (utime+stime of the proxy over the run) / requests. Medians of {rounds} rounds,
proxy order rotated each round. Rerun: `make bench` (raw numbers in bench-raw.txt).
""" + ("Baseline: BENCH_BASELINE, an older build measured in the same run.\n" if base else "") + """

""" + "\n".join(rows) + """

Where the CPU goes (medians; user = utime, kernel = stime, per request):

""" + "\n".join(split) + "\n"
open(out, "w").write(text)
print(text)
PY
