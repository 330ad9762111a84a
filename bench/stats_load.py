#!/usr/bin/env python3
"""Scenario 9 of bench/run: GET /jars/events/<event>/stats five times one after the other, then
16 at once. Prints "median_ms max_ms rss_growth_mib answered_200 slowest_parallel_ms".

  stats_load.py PORT PID EVENT TOKEN
"""
import concurrent.futures
import http.client
import statistics
import sys
import time

port, pid, event, token = sys.argv[1:5]


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def get():
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    c.request("GET", f"/jars/events/{event}/stats", headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    body = r.read()
    return r.status, time.perf_counter() - t0, body


status, _, body = get()
if status != 200:
    sys.exit(f"stats: HTTP {status}: {body[:200]!r}")
times = [get()[1] for _ in range(5)]
before = rss_mib()
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    parallel = list(pool.map(lambda _: get(), range(16)))
after = rss_mib()
ok = sum(1 for s, _, _ in parallel if s == 200)
print(f"{statistics.median(times) * 1000:.0f} {max(times) * 1000:.0f} {after - before:.1f} {ok} "
      f"{max(t for _, t, _ in parallel) * 1000:.0f}")
