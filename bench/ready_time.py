#!/usr/bin/env python3
"""bench/run: exec → /readyz 200 of `jars serve` on an existing data dir, RUNS times, and the
idle RSS 2 s after ready. Prints "median_ms max_ms median_idle_rss_mib".

  ready_time.py JARS DATA_DIR CONFIG PORT RUNS
"""
import http.client
import statistics
import subprocess
import sys
import time

jars, data, config, port, runs = sys.argv[1:6]
times, rss = [], []
for _ in range(int(runs)):
    t0 = time.perf_counter()
    p = subprocess.Popen([jars, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                          "--config", config], stderr=subprocess.DEVNULL)
    while time.perf_counter() < t0 + 10:
        try:
            c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.001)
    times.append((time.perf_counter() - t0) * 1000)
    time.sleep(2)
    with open(f"/proc/{p.pid}/status") as f:
        rss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024)
    p.terminate()
    p.wait(10)
print(f"{statistics.median(times):.0f} {max(times):.0f} {statistics.median(rss):.1f}")
