#!/usr/bin/env python3
"""The report section of tests/bench/protocols.sh from its raw numbers.

    protocols_report.py RAW SECTION_OUT BENCH_REPORT

Writes the section to SECTION_OUT and puts it into BENCH_REPORT (run.sh's report) between
markers, replacing the section of an earlier run; prints it.
"""

import collections
import os
import statistics
import sys

BEGIN, END = "<!-- protocols.sh:begin -->", "<!-- protocols.sh:end -->"
PROXIES = ["sluice", "nginx", "haproxy"]


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def main():
    raw_path, section_path, report_path = sys.argv[1:4]
    head, tls, memory, maxes = {}, [], {}, {}
    runs = collections.defaultdict(lambda: collections.defaultdict(list))  # (kind, body) -> proxy -> [fields]
    for line in open(raw_path):
        word = line.split()[0] if line.split() else ""
        f = fields(line)
        if word in ("loadavg_start", "loadavg_end", "latency_rate"):
            head[word] = " ".join(line.split()[1:])
        elif word == "versions":
            head["versions"] = f
        elif line.startswith("#"):
            head["setup"] = line[1:].strip()
            head["knobs"] = f
        elif word == "tls":
            tls.append(f)
        elif word == "memory":
            memory[f["proxy"]] = f
        elif word == "max":
            maxes[f["proxy"]] = int(f["rps"])
        elif "kind" in f:
            runs[(f["kind"], f.get("body", ""))][f["proxy"]].append(f)

    def med(kind, body, proxy, key):
        vals = [float(r[key]) for r in runs[(kind, body)].get(proxy, []) if key in r]
        return statistics.median(vals) if vals else float("nan")

    rows = []

    # BENCH_BASELINE: an older Sluice build measured in the same run, in two more columns.
    base = "baseline" in memory or any("baseline" in d for d in runs.values())

    def row(measure, values, fmt, target=None, lower_is_better=True):
        s, n, h = (values[p] for p in PROXIES)
        rn, rh = s / n if n else float("nan"), s / h if h else float("nan")
        verdict = ""
        if target is not None:
            ok = rn <= target if lower_is_better else rn >= target
            sign = "≤" if lower_is_better else "≥"
            verdict = f"{sign}{target:.2f}x nginx: {'met' if ok else '**missed**'}"
        line = f"| {measure} | {fmt.format(s)} | {fmt.format(n)} | {fmt.format(h)} | {rn:.2f}x | {rh:.2f}x | {verdict} |"
        if base:
            b = values.get("baseline", float("nan"))
            line += f" {fmt.format(b)} | {s / b if b else float('nan'):.2f}x |"
        rows.append(line)

    with_base = PROXIES + (["baseline"] if base else [])
    per = lambda kind, body, key: {p: med(kind, body, p, key) for p in with_base}
    row("TLS 1.3 full handshake: µs server CPU each ¹", per("handshake", "", "cpu_us"), "{:.0f}", 0.67)
    row("TLS 1.3 full handshakes/s (client-bound) ¹", per("handshake", "", "rate"), "{:.0f}")
    row("TLS 1.3 full handshake + one GET (0 B), µs server CPU each ¹", per("handshake_get", "", "cpu_us"), "{:.0f}")
    row("TLS 1.3 full handshake + one GET (0 B), connections/s ¹", per("handshake_get", "", "rate"), "{:.0f}")
    h2_bodies = sorted({b for (k, b) in runs if k == "h2"}, key=lambda b: (len(b), b))
    for body in h2_bodies:
        label = {"0": "0 B", "1k": "1 KiB", "16k": "16 KiB"}.get(body, body)
        row(f"HTTP/2 over TLS, {label} body: µs CPU/request ²", per("h2", body, "cpu_us"), "{:.2f}", 1.0)
        row(f"HTTP/2 over TLS, {label} body: requests/s ²", per("h2", body, "rps"), "{:.0f}")
    if all(p in memory for p in PROXIES):
        mib = lambda key: {p: int(memory[p][key]) / 1024 for p in with_base if p in memory}
        row("RSS idle, MiB ³", mib("idle_rss_kib"), "{:.1f}", 1.0)
        count = memory["sluice"]["opened"]
        row(f"RSS holding {count} idle keep-alive connections, MiB ³", mib("loaded_rss_kib"), "{:.1f}", 1.0)
        per_conn = {p: (int(memory[p]["loaded_rss_kib"]) - int(memory[p]["idle_rss_kib"])) / max(1, int(memory[p]["held"])) for p in with_base if p in memory}
        row("RSS added per idle connection, KiB ³", per_conn, "{:.2f}")
    rate = head.get("latency_rate", "?")
    for key, label, target in [("p50_ms", "p50", None), ("p99_ms", "p99", 1.0), ("p999_ms", "p99.9", None)]:
        row(f"1 KiB at {rate} req/s open loop: {label} latency, ms ⁴", per("latency", "", key), "{:.3f}", target)
    row(f"1 KiB at {rate} req/s open loop: achieved req/s ⁴", per("latency", "", "rps"), "{:.0f}")
    row(f"1 KiB at {rate} req/s open loop: µs CPU/request ⁴", per("latency", "", "cpu_us"), "{:.2f}")

    knobs = head.get("knobs", {})
    h2c, _, h2m = knobs.get("h2", "?x?").partition("x")
    rounds = max((len(v) for d in runs.values() for v in d.values()), default=0)
    v = head.get("versions", {})
    tls_rows = ["| server | SNI | protocol | cipher | key exchange | NewSessionTicket messages sent | certificate |", "|---|---|---|---|---|---|---|"]
    for f in tls:
        tls_rows.append(f"| {f['proxy']} | {f['sni']} | {f['protocol']} | {f['cipher']} | {f['group']} | {f['tickets']} | {f['cert']} |")
    mem_notes = ", ".join(
        f"{p}: {memory[p]['opened']} opened, {memory[p]['held']} held"
        + (f", read {memory[p]['settled_s']} s after" if "settled_s" in memory[p] else "") + (f", worker alone {int(memory[p]['worker_rss_kib'])/1024:.1f} MiB" if "worker_rss_kib" in memory[p] else "")
        for p in with_base if p in memory)
    checks = []
    for (kind, body), d in sorted(runs.items()):
        for p, rs in d.items():
            for r in rs:
                bad = {k: r[k] for k in ("failed", "errored", "non2xx", "errors") if k in r and r[k] not in ("0",)}
                if bad:
                    checks.append(f"{kind} {body} {p}: {bad}")
    cores = []
    for (kind, body), d in sorted(runs.items()):
        for p in with_base:
            rs = d.get(p, [])
            if rs and "core0" in rs[0]:
                c0 = statistics.median(float(r["core0"]) for r in rs)
                c1 = statistics.median(float(r["core1"]) for r in rs)
                cores.append(f"{kind}{' ' + body if body else ''} {p} {c0:.0f}/{c1:.0f}")

    text = f"""{BEGIN}
## TLS, HTTP/2, memory and latency (tests/bench/protocols.sh)

Same topology (each proxy alone on core 1 with one worker, the nginx backend and the load
generator on core 0), medians of {rounds} rounds, proxy order rotated each round; {head.get('setup', '')}.
Sluice {v.get('sluice', '?')} (release build); peers: nginx {v.get('nginx', '?')}, HAProxy {v.get('haproxy', '?')}, both on Debian's **OpenSSL
{v.get('openssl', '?')}** (3.0 is slower at handshakes than 1.1.1 or 3.2+: TLS ratios are against
that); Sluice on rustls with aws-lc-rs. Load average {head.get('loadavg_start', '?')} at the start,
{head.get('loadavg_end', '?')} at the end. Rerun: `tests/bench/protocols.sh` (raw numbers in
protocols-raw.txt).

| measure | Sluice | nginx | HAProxy | Sluice/nginx | Sluice/HAProxy | target |""" + (" baseline | Sluice/baseline |" if base else "") + """
|---|---|---|---|---|---|---|""" + ("---|---|" if base else "") + """
""" + "\n".join(rows) + f"""

1. Client: `openssl s_time -new` (OpenSSL {v.get('openssl', '?')}), {knobs.get('tls_clients', '?')} processes in parallel:
   a new TCP connection and a full TLS 1.3 handshake per connection, never resumed, then
   close_notify and close; "+ one GET" is `s_time -new -www /0`: one HTTP/1.0 GET of a 0-byte
   body on each new connection first, proxied to the backend, then the server closes. The client is
   pinned to TLS 1.3 and X25519 by an OpenSSL config (`Groups = X25519`), without SNI, so every
   server uses its default certificate: the same ECDSA P-256 certificate everywhere. Session
   tickets and caches are off on nginx (`ssl_session_tickets off; ssl_session_cache off`) and
   HAProxy (`no-tls-tickets`, `tune.ssl.cachesize 0`); Sluice issues no stateless tickets
   (rustls' default) and has no setting for its stateful ones. Every server still sends the
   NewSessionTicket messages counted below (OpenSSL 3.0 sends stateful TLS 1.3 tickets
   anyway); the client never resumes. Server CPU per handshake = (utime+stime of the proxy
   over the run) / connections. Pinned on the client side: Sluice has no key-exchange setting
   and would pick X25519MLKEM768 for a client that offers it.
2. `h2load -t1 -c{h2c} -m{h2m} -D{knobs.get('duration', '?')}` over TLS 1.3 + X25519 with SNI (Sluice serves
   the Ingress's certificate from its mirrored Secret, the same certificate), ALPN h2;
   each proxy speaks HTTP/1.1 with keepalive to the backend. CPU per request as above.
3. VmRSS from /proc: idle (after start and a few requests), then while
   tests/bench/idle_conns.py holds idle keep-alive connections, each after one `GET /0`
   (HTTP/1.1) answered, read once two readings 1 s apart are within 1% (at most 10 s after
   the last connection opened); nginx counts master + worker (shared pages counted twice). {mem_notes}.
   nginx `worker_connections` and HAProxy `maxconn` raised; `ulimit -n` is the hard limit.
4. `oha {v.get('oha', '?')} -q R --latency-correction` (open loop, coordinated omission corrected),
   `-c{knobs.get('conns', '?')} -z{knobs.get('duration', '?')}s`, HTTP/1.1 keep-alive, R = half the lowest of the three
   proxies' closed-loop oha maxima for 1 KiB ({', '.join(f'{p} {maxes[p]}' for p in PROXIES if p in maxes)} req/s).

What the servers negotiated with the pinned clients:

""" + "\n".join(tls_rows) + f"""

Busy % of core 0 (load generator + backend) / core 1 (proxy), medians (mpstat; it counts the
whole machine, other work on it included): {'; '.join(cores)}.

Errors: {'; '.join(checks) if checks else 'none (h2load failed/errored 0, oha non-2xx and errors 0)'}
(oha's requests still in flight when its duration ends are not errors: cut_at_end in the raw file).
{END}
"""
    open(section_path, "w").write(text)
    report = open(report_path).read() if os.path.exists(report_path) else "# Sluice data-plane benchmark\n"
    if BEGIN in report and END in report:
        report = report[: report.index(BEGIN)] + report[report.index(END) + len(END) + 1 :]
    open(report_path, "w").write(report.rstrip("\n") + "\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
