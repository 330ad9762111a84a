#!/usr/bin/env python3
"""Scenario 10 of bench/run: ending an event with COUNT listeners on a real Icecast 2.4.4.

Starts a source on /<event>.mp3, joins COUNT listeners (CONCURRENCY at a time, as in
icecast_join.py) and keeps them connected, then ends the event through jars' API
(`POST /jars/events/<event>/end`) and measures: how long until every listener's connection was
closed by Icecast, the most admin-API connections jars held open to Icecast at once (sampled from
`ss -tnp` every 20 ms), and the latency of Icecast-shaped `listener_add` callbacks sent to jars
meanwhile for another event (one connection, as Icecast's auth thread sends them). Prints one
JSON line. Only 127.0.0.1 is contacted; every wait is bounded.
"""
import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from icecast_join import HEAD_TIMEOUT, percentile, read_head, start_source  # noqa: E402


def admin_connections(icecast_port, jars_pid):
    """Established TCP connections from jars' process to Icecast's port."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{icecast_port} )"],
        capture_output=True, text=True, check=False,
    ).stdout
    return sum(1 for line in out.splitlines() if re.search(rf"pid={jars_pid}\b", line))


class MostConnections(threading.Thread):
    """Samples admin_connections every 20 ms on a thread of its own (the event loop is busy with
    thousands of listeners, and the end request may answer only once its kicks are done)."""

    def __init__(self, icecast_port, jars_pid):
        super().__init__(daemon=True)
        self.args, self.most, self.stop = (icecast_port, jars_pid), 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.most = max(self.most, admin_connections(*self.args))
            time.sleep(0.02)


async def post(port, path, form, headers=""):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = urllib.parse.urlencode(form)
    writer.write(
        (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
         f"{headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()
    )
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return int(data.split(b" ", 2)[1])


async def callbacks(jars_port, basic, event, stop, latencies):
    """listener_add callbacks for `event`, one at a time on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", jars_port)
    client = 10_000_000
    while not stop.is_set():
        client += 1
        body = (f"action=listener_add&server=bench&port=1&client={client}&mount=%2f{event}"
                f"&user=&pass=&ip=127%2e0%2e0%2e1&agent=bench")
        t0 = time.perf_counter()
        writer.write(
            (f"POST /icecast/auth HTTP/1.1\r\nHost: jars\r\nAuthorization: Basic {basic}\r\n"
             f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - t0)
        await asyncio.sleep(0.005)
    writer.close()


async def join(port, mount):
    """One listener: connected and heard (200), or None."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), HEAD_TIMEOUT)
        writer.write(f"GET {mount} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: jars-bench\r\n\r\n".encode())
        await writer.drain()
        status, _ = await read_head(reader)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        return None
    if status != 200:
        writer.close()
        return None
    return reader, writer


async def closed(reader):
    """When Icecast closed this listener's connection (None: not within a minute)."""
    try:
        while await asyncio.wait_for(reader.read(65536), 60):
            pass
    except (OSError, asyncio.TimeoutError):
        return None
    return time.perf_counter()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--icecast-port", type=int, required=True)
    ap.add_argument("--jars-port", type=int, required=True)
    ap.add_argument("--jars-pid", type=int, required=True)
    ap.add_argument("--event", required=True)
    ap.add_argument("--other-event", required=True)
    ap.add_argument("--token", required=True, help="the owner's token: source password and API auth")
    ap.add_argument("--basic", required=True, help="base64 of the callback credentials")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=64)
    a = ap.parse_args()

    mount = f"/{a.event}.mp3"
    stop_source = asyncio.Event()
    source = await start_source(a.icecast_port, mount, a.token, stop_source)
    await asyncio.sleep(1.0)
    gate = asyncio.Semaphore(a.concurrency)

    async def one():
        async with gate:
            return await join(a.icecast_port, mount)

    t_join = time.perf_counter()
    conns = [c for c in await asyncio.wait_for(asyncio.gather(*(one() for _ in range(a.count))), 900) if c]
    join_s = time.perf_counter() - t_join
    joined = len(conns)

    # Callback latency while nothing happens, then while the kicks run.
    latencies_before, latencies_during = [], []
    stop_cb = asyncio.Event()
    cb_task = asyncio.create_task(callbacks(a.jars_port, a.basic, a.other_event, stop_cb, latencies_before))
    await asyncio.sleep(2.0)
    stop_cb.set()
    await cb_task
    stop_cb = asyncio.Event()
    cb_task = asyncio.create_task(callbacks(a.jars_port, a.basic, a.other_event, stop_cb, latencies_during))

    waits = [asyncio.create_task(closed(r)) for r, _ in conns]
    sampler = MostConnections(a.icecast_port, a.jars_pid)
    sampler.start()
    t_end = time.perf_counter()
    status = await post(a.jars_port, f"/jars/events/{a.event}/end", {"auth": a.token})
    await asyncio.wait(waits, timeout=max(0.0, 60 - (time.perf_counter() - t_end)))
    sampler.stop.set()
    sampler.join()
    most = sampler.most
    ends = [t.result() for t in waits if t.done() and t.result() is not None]
    stop_cb.set()
    await cb_task
    stop_source.set()
    source.cancel()
    for _, w in conns:
        w.close()
    print(json.dumps({
        "listeners": a.count,
        "joined": joined,
        "join_s": round(join_s, 1),
        "end_status": status,
        "dropped": len(ends),
        "all_dropped_s": round(max(ends) - t_end, 2) if len(ends) == joined and ends else None,
        "p50_dropped_s": round(percentile([e - t_end for e in ends], 50), 2) if ends else None,
        "max_admin_connections": most,
        "callback_p50_ms_before": round(percentile(latencies_before, 50) * 1000, 2),
        "callback_p99_ms_before": round(percentile(latencies_before, 99) * 1000, 2),
        "callback_p50_ms_during": round(percentile(latencies_during, 50) * 1000, 2),
        "callback_p99_ms_during": round(percentile(latencies_during, 99) * 1000, 2),
        "callbacks_during": len(latencies_during),
    }))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
