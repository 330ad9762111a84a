#!/usr/bin/env python3
"""Scenario 7 of bench/run: listeners joining a private event on a real Icecast 2.4.4.

Starts a source on /<event>.mp3 (HTTP PUT, Basic password = the owner's JWT, MPEG frames every
20 ms), then opens COUNT listeners, CONCURRENCY at a time (spread in turn over --listen-ports, the
edge servers of a master, when given), each `GET /<event>.mp3?token=<ticket>`
with its own ticket, and reads the answer's head. Listeners that get in stay connected until the
end (a show starting: listeners join and stay), so Icecast's auth queue holds only listener_add
callbacks. Prints one JSON line: joins/s (200s over the wall time from the first connect to the
last answer), how many got 200, 403 "busy" (Icecast's auth queue over 100), other statuses, and
join latency percentiles.

Only 127.0.0.1 is contacted; every wait is bounded.
"""
import argparse
import asyncio
import base64
import json
import statistics
import sys
import time

HEAD_TIMEOUT = 20.0  # Icecast gives up on its callback after 15 s
FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)  # one 128 kbit/s MP3 frame, 26 ms


async def read_head(reader):
    data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return int(status_line.split()[1]), data


async def start_source(port, mount, password, stop):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = base64.b64encode(f"source:{password}".encode()).decode()
    writer.write(
        (
            f"PUT {mount} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
            "User-Agent: jars-bench-source\r\nContent-Type: audio/mpeg\r\nIce-Public: 0\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status, _ = await read_head(reader)
    if status == 100:
        status, _ = await read_head(reader)
    if status != 200:
        raise SystemExit(f"source PUT {mount}: HTTP {status}")

    async def feed():
        try:
            while not stop.is_set():
                writer.write(FRAME)
                await writer.drain()
                await asyncio.sleep(0.02)
        finally:
            writer.close()

    return asyncio.create_task(feed())


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was full (all sockets:
    Icecast 2.4.4 listens with a backlog of 5, ICECAST_LISTEN_QUEUE)."""
    try:
        lines = [l.split() for l in open("/proc/net/netstat") if l.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1]))["ListenOverflows"])
    except (OSError, KeyError, IndexError, ValueError):
        return -1


async def listener(port, mount, ticket, results, open_conns, source_ip=None):
    started = time.perf_counter()
    local = (source_ip, 0) if source_ip else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=local), HEAD_TIMEOUT
        )
    except (OSError, asyncio.TimeoutError) as e:
        results.append(("connect-error", 0.0, repr(e), time.perf_counter()))
        return
    try:
        writer.write(
            f"GET {mount}?token={ticket} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
            "User-Agent: jars-bench-listener\r\n\r\n".encode()
        )
        await writer.drain()
        status, head = await read_head(reader)
        took = time.perf_counter() - started
        detail = ""
        if status == 403:
            # Icecast's 403 page names the reason ("busy, please try again later").
            try:
                detail = (await asyncio.wait_for(reader.read(2048), 2.0)).decode("latin-1")
            except asyncio.TimeoutError:
                pass
        results.append((status, took, detail, time.perf_counter()))
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
        results.append(("error", time.perf_counter() - started, repr(e), time.perf_counter()))
        writer.close()
        return
    if status == 200:
        open_conns.append(writer)  # stays connected: listeners join and stay
    else:
        writer.close()


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--event", required=True)
    ap.add_argument("--source-password", required=True)
    ap.add_argument("--tickets", required=True, help="file with one ticket a line")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument(
        "--listen-ports",
        help="comma-separated ports listeners join, in turn (edge servers relaying --port); "
        "default: --port",
    )
    ap.add_argument(
        "--settle", type=float, default=1.0, help="seconds from the source to the first listener"
    )
    ap.add_argument(
        "--from-loopback",
        action="store_true",
        help="listeners connect from 127.0.0.2 and up (edges' pulls come from 127.0.0.1)",
    )
    args = ap.parse_args()
    ports = [int(p) for p in args.listen_ports.split(",")] if args.listen_ports else [args.port]

    tickets = [t.strip() for t in open(args.tickets) if t.strip()][: args.count]
    if len(tickets) < args.count:
        raise SystemExit(f"need {args.count} tickets, {args.tickets} has {len(tickets)}")
    mount = f"/{args.event}.mp3"
    stop = asyncio.Event()
    source = await start_source(args.port, mount, args.source_password, stop)
    # mount_add reaches the callback and the mount is live (on edges: relayed).
    await asyncio.sleep(args.settle)

    results, open_conns = [], []
    gate = asyncio.Semaphore(args.concurrency)

    async def one(n, ticket):
        source_ip = f"127.0.{2 + n // 250}.{2 + n % 250}" if args.from_loopback else None
        async with gate:
            await listener(ports[n % len(ports)], mount, ticket, results, open_conns, source_ip)

    overflows = listen_overflows()
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(n, t) for n, t in enumerate(tickets))), 600)
    wall = time.perf_counter() - started
    overflows = listen_overflows() - overflows

    stop.set()
    for w in open_conns:
        w.close()
    await source

    joined = [r for r in results if r[0] == 200]
    busy = [r for r in results if r[0] == 403 and "busy" in r[2]]
    other = {}
    for r in results:
        if r[0] != 200 and r not in busy:
            other[str(r[0])] = other.get(str(r[0]), 0) + 1
    lat = [r[1] for r in joined]
    # Time until 95% of all listeners were in: insensitive to the few whose connection the
    # kernel dropped from Icecast's 5-deep accept queue and that retried after seconds.
    done = sorted(r[3] - started for r in joined)
    n95 = int(0.95 * len(results))
    t95 = done[n95 - 1] if len(done) >= n95 > 0 else None
    failures = [f"{r[0]}: {r[2][:120]}" for r in results if r[0] != 200 and r not in busy][:3]
    print(
        json.dumps(
            {
                "listeners": len(results),
                "joined": len(joined),
                "busy_403": len(busy),
                "other": other,
                "wall_s": round(wall, 3),
                "joins_per_s": round(len(joined) / wall, 1),
                "join_p50_ms": round(percentile(lat, 50) * 1000, 1),
                "join_p99_ms": round(percentile(lat, 99) * 1000, 1),
                "join_mean_ms": round(statistics.mean(lat) * 1000, 1) if lat else 0.0,
                "failures_sample": failures,
                "joins_per_s_first95": round(n95 / t95, 1) if t95 else 0.0,
                "listen_overflows": overflows,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
