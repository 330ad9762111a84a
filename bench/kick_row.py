#!/usr/bin/env python3
"""bench/run scenario 10's table row from icecast_kick.py's JSON and jars' kick count."""
import json
import sys

k = json.loads(sys.argv[1] or "{}")
target = "all dropped ≤ 10 s, ≤ 16 admin connections, callbacks unaffected"
if not k:
    print("\t".join(["10. Icecast 2.4.4: ending an event with 10,000 listeners"] + ["-"] * 10
                    + [target, "the run failed: see the log"]))
    sys.exit()
note = (f"joined {k['joined']} of {k['listeners']} in {k['join_s']} s; dropped {k['dropped']} (jars counted "
        f"{sys.argv[2]} kicks 'dropped'); median drop {k['p50_dropped_s']} s; most admin connections jars held "
        f"at once {k['max_admin_connections']}; callbacks before: p50 {k['callback_p50_ms_before']} ms, p99 "
        f"{k['callback_p99_ms_before']} ms; during the kicks ({k['callbacks_during']}): p50 "
        f"{k['callback_p50_ms_during']} ms, p99 {k['callback_p99_ms_during']} ms")
print("\t".join(map(str, [f"10. Icecast 2.4.4: ending an event with {k['joined']} listeners (s until all dropped)",
                          "-", k["all_dropped_s"], "-", "-", "-", "-", "-", "-", "-", "-", target, note])))
