#!/usr/bin/env python3
"""Opens N keep-alive HTTP/1.1 connections, sends one request on each and keeps them open.

    idle_conns.py HOST PORT COUNT PATH READY_FILE

Used by tests/bench/protocols.sh to measure a proxy's RSS while it holds COUNT idle client
connections. Every connection gets one `GET PATH` (HTTP/1.1, keep-alive) and must answer
200 with a Content-Length body, which is read whole, so the proxy has finished the request and
holds a plain idle keep-alive connection. When all are open, the number that succeeded is
written to READY_FILE (then the harness reads the RSS); the connections stay open until the
process is terminated (SIGTERM or SIGINT).

Connections are opened and served IDLE_CONCURRENCY (environment, default 256) at a time. The
burst can leave a proxy with up to that many idle upstream connections, so a lower value shows what
the idle client connections alone cost.
"""

import asyncio
import os
import signal
import sys

CONNECT_CONCURRENCY = int(os.environ.get("IDLE_CONCURRENCY", "256"))  # so the listen backlog never overflows


async def open_one(host, port, request, sem, conns):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = head.decode("latin-1").split("\r\n")
            if " 200 " not in lines[0] + " ":
                raise RuntimeError(f"status line {lines[0]!r}")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await asyncio.wait_for(reader.readexactly(length), 30)
            conns.append((reader, writer))
        except Exception as e:  # counted, reported by the harness as open < COUNT
            print(f"idle_conns: connection failed: {e!r}", file=sys.stderr)


async def main():
    host, port, count, path, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    conns = []
    await asyncio.gather(*(open_one(host, port, request, sem, conns) for _ in range(count)))
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{len(conns)}\n")
    os.replace(tmp, ready)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for _, writer in conns:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
