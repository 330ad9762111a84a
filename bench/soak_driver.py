#!/usr/bin/env python3
"""Mixed-traffic soak driver for jars; started by bench/soak, which runs the server.

Drives N keep-alive HTTP/1.1 connections to a jars on 127.0.0.1 for a bounded time (and a
bounded number of requests) with a weighted mix of Icecast callbacks and API calls. Every
request carries its expectation: the statuses that are fine for it and, for Icecast callbacks,
whether jars must allow or deny. Samples the server's RSS every 10 s. At the end prints requests
by kind and status, anything unexpected, and RSS after warm-up and at the end; exits 1 when
anything unexpected happened or RSS grew by 10 % or more.

Standard library only, so it runs wherever python3 does.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import time
import urllib.parse
from collections import Counter

HOST = "127.0.0.1"  # the only address this driver ever talks to
CALLBACK_USER = "icecast"
CALLBACK_PASS = "soak-callback-secret"
RSS_INTERVAL = 10.0
MAX_OPEN_SESSIONS = 16  # per connection, then the oldest listener leaves


def esc(value):
    """Escapes like Icecast 2.4: every byte but [A-Za-z0-9]."""
    return "".join(
        chr(b) if chr(b).isascii() and chr(b).isalnum() else "%%%02x" % b
        for b in value.encode()
    )


def callback_body(fields):
    return "&".join(f"{k}={esc(v)}" for k, v in fields)


def form(fields):
    return urllib.parse.urlencode(fields)


class Request:
    __slots__ = ("kind", "method", "path", "body", "headers", "ok", "verdict", "own_conn")

    def __init__(self, kind, method, path, ok, body=None, headers=None, verdict=None, own_conn=False):
        self.own_conn = own_conn  # sent on a connection of its own (the server may close it)
        self.kind = kind
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers or {}
        self.ok = ok  # statuses that are expected
        self.verdict = verdict  # "allow" / "deny" for Icecast callbacks

    def encode(self):
        body = (self.body or "").encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}"]
        for k, v in self.headers.items():
            lines.append(f"{k}: {v}")
        if self.method == "POST":
            lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += chunk[:-2]
            if size == 0:
                break
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


class Soak:
    def __init__(self, args, world):
        self.args = args
        self.w = world
        self.by_status = Counter()  # (kind, status)
        self.unexpected = Counter()  # (kind, what)
        self.examples = {}
        self.latencies = []
        self.requests = 0
        self.started = 0.0
        self.deadline = 0.0
        self.rss = []  # (seconds since start, kB)
        self.cb_auth = "Basic " + base64.b64encode(
            f"{CALLBACK_USER}:{CALLBACK_PASS}".encode()
        ).decode()

    # ---- the traffic mix -------------------------------------------------------------------

    def callback(self, kind, fields, verdict, auth=True):
        headers = {"User-Agent": "Icecast 2.4.4"}
        if auth:
            headers["Authorization"] = self.cb_auth
        return Request(
            kind, "POST", "/icecast/auth", {200}, callback_body(fields), headers, verdict
        )

    def listener_add(self, conn, kind, event, token, verdict, ip="127.0.0.1"):
        client = f"{conn['id']}-{conn['next']}"
        conn["next"] += 1
        mount = f"/{event}.mp3" + (f"?token={token}" if token else "")
        req = self.callback(
            kind,
            [
                ("action", "listener_add"),
                ("server", "soak.local"),
                ("port", "8000"),
                ("client", client),
                ("mount", mount),
                ("user", ""),
                ("pass", ""),
                ("ip", ip),
                ("agent", "soak/1"),
                ("ClientHeader.referer", "http://player.example/"),
            ],
            verdict,
        )
        if verdict == "allow":
            conn["open"].append((mount, client))
        return req

    def listener_remove(self, conn):
        mount, client = conn["open"].pop(0)
        return self.callback(
            "listener_remove",
            [
                ("action", "listener_remove"),
                ("server", "soak.local"),
                ("port", "8000"),
                ("client", client),
                ("mount", mount),
                ("user", ""),
                ("pass", ""),
                ("duration", "3"),
                ("ip", "127.0.0.1"),
            ],
            "allow",  # notifications are answered icecast-auth-user: 1
        )

    def mount_change(self, action, event):
        return self.callback(
            action,
            [("action", action), ("mount", f"/{event}"), ("server", "soak.local"), ("port", "8000")],
            "allow",
        )

    def next_request(self, conn):
        w = self.w
        r = random.random
        if len(conn["open"]) >= MAX_OPEN_SESSIONS or (conn["open"] and r() < 0.25):
            return self.listener_remove(conn)
        x = r() * 100
        if x < 22:
            return self.listener_add(conn, "listener_add public", random.choice(w["public"]), None, "allow")
        if x < 38:
            event = random.choice(w["private"])
            return self.listener_add(
                conn, "listener_add private+ticket", event, random.choice(w["tickets"][event]), "allow"
            )
        if x < 41:
            return self.listener_add(
                conn, "listener_add private, no ticket (deny)", random.choice(w["private"]), None, "deny"
            )
        if x < 43:
            # A ticket for one private event never opens another.
            a, b = random.sample(w["private"], 2)
            return self.listener_add(
                conn, "listener_add ticket for another event (deny)", a, random.choice(w["tickets"][b]), "deny"
            )
        if x < 49:
            event = random.choice(w["public"] + w["private"])
            return self.callback(
                "stream_auth owner",
                [
                    ("action", "stream_auth"),
                    ("mount", f"/{event}"),
                    ("ip", "127.0.0.1"),
                    ("server", "soak.local"),
                    ("port", "8000"),
                    ("user", "source"),
                    ("pass", random.choice(w["owner_tokens"])),
                ],
                "allow",
            )
        if x < 51:
            return self.callback(
                "stream_auth other user (deny)",
                [
                    ("action", "stream_auth"),
                    ("mount", f"/{random.choice(w['public'])}"),
                    ("ip", "127.0.0.1"),
                    ("server", "soak.local"),
                    ("port", "8000"),
                    ("user", "source"),
                    ("pass", w["other_token"]),
                ],
                "deny",
            )
        if x < 55:
            return self.mount_change("mount_add", random.choice(w["public"] + w["private"]))
        if x < 59:
            return self.mount_change("mount_remove", random.choice(w["public"] + w["private"]))
        if x < 64:
            token = random.choice(w["owner_tokens"] + [w["admin_token"]])
            event = random.choice(w["public"] + w["private"])
            return Request("connect", "POST", "/jars/connect", {202}, form([("auth", token), ("mount", event)]))
        if x < 72:
            return Request("events", "GET", "/jars/events", {200})
        if x < 76:
            return Request(
                "events with token",
                "GET",
                "/jars/events",
                {200},
                headers={"Authorization": f"Bearer {random.choice(w['owner_tokens'])}"},
            )
        if x < 80:
            event = random.choice(w["public"])
            return Request("event by id", "GET", f"/jars/events/{event}", {200})
        # Logins are rare next to callbacks, and each costs an argon2 verification (19 MiB, tens
        # of ms): keep them a small share so that the soak is not a password-hashing benchmark.
        if x < 80.3:
            user, pw = random.choice(w["users"])
            return Request("token", "POST", "/jars/token", {200}, form([("user", user), ("password", pw)]))
        if x < 83:
            event = random.choice(w["private"])
            return Request(
                "ticket",
                "POST",
                "/jars/ticket",
                {200},
                form([("auth", random.choice(w["owner_tokens"])), ("mount", event), ("lifetime", "600")]),
            )
        if x < 85:
            return Request("metrics", "GET", "/metrics", {200})
        if x < 86:
            return Request("healthz", "GET", "/healthz", {200})
        if x < 87:
            return Request("readyz", "GET", "/readyz", {200})
        # Deliberately bad requests: their 4xx (or denial) is the expected answer.
        if x < 89:
            return Request(
                "bad: invalid token (401)",
                "POST",
                "/jars/connect",
                {401},
                form([("auth", "eyJhbGciOiJub25lIn0.e30.x"), ("mount", random.choice(w["public"]))]),
            )
        if x < 91:
            return Request(
                "bad: expired original token (401)",
                "GET",
                "/jars/events",
                {401},
                headers={"Authorization": f"Bearer {w['expired_token']}"},
            )
        if x < 93:
            body = random.choice(
                ["mount=%2flive", "action=listener_fly&mount=%2fa", "action=listener_add&mount=%2fa", "action=mount_add&mount=%ff"]
            )
            return Request(
                "bad: malformed callback (400)",
                "POST",
                "/icecast/auth",
                {400},
                body,
                {"Authorization": self.cb_auth},
            )
        if x < 94:
            return self.callback(
                "bad: callback without credentials (deny)",
                [("action", "mount_add"), ("mount", f"/{random.choice(w['public'])}"), ("server", "x"), ("port", "1")],
                "deny",
                auth=False,
            )
        if x < 95:
            return Request("bad: event id not a uuid (400)", "GET", "/jars/events/not-a-uuid", {400})
        if x < 96.8:
            return Request("bad: unknown event (404)", "GET", f"/jars/events/{w['missing']}", {404})
        if x < 97:
            user, _ = random.choice(w["users"])
            return Request(
                "bad: wrong password (401)", "POST", "/jars/token", {401}, form([("user", user), ("password", "wrong")])
            )
        if x < 98:
            return Request("bad: unknown route (404)", "GET", "/nope", {404})
        if x < 99:
            return self.callback(
                "bad: unknown mount (deny)",
                [
                    ("action", "listener_add"),
                    ("server", "soak.local"),
                    ("port", "8000"),
                    ("client", "x"),
                    ("mount", "/live"),
                    ("user", ""),
                    ("pass", ""),
                    ("ip", "127.0.0.1"),
                ],
                "deny",
            )
        return Request(
            "bad: body over 16 KiB (413)",
            "POST",
            "/jars/create",
            {413},
            "auth=x&title=" + "a" * (17 * 1024),
            own_conn=True,
        )

    # ---- running ---------------------------------------------------------------------------

    def record(self, req, status, headers, body, elapsed):
        self.requests += 1
        self.by_status[(req.kind, status)] += 1
        if len(self.latencies) < 200_000:
            self.latencies.append(elapsed)
        elif random.random() < 0.01:
            self.latencies[random.randrange(len(self.latencies))] = elapsed
        what = None
        if status not in req.ok:
            what = f"status {status}"
        elif req.verdict is not None:
            allowed = headers.get("icecast-auth-user") == "1"
            if req.verdict == "allow" and not allowed:
                what = f"denied: {headers.get('icecast-auth-message', '?')}"
            elif req.verdict == "deny" and allowed:
                what = "allowed"
        if what:
            self.unexpected[(req.kind, what)] += 1
            self.examples.setdefault((req.kind, what), (req.method, req.path, body[:200]))

    async def connection(self, n):
        conn = {"id": f"c{n}", "next": 0, "open": []}
        reader = writer = None
        while time.monotonic() < self.deadline and self.requests < self.args.max_requests:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(HOST, self.args.port)
                except OSError as e:
                    self.unexpected[("connect", f"error {type(e).__name__}")] += 1
                    await asyncio.sleep(0.5)
                    continue
            req = self.next_request(conn)
            if req.own_conn:
                await self.one_off(req)
                continue
            t0 = time.monotonic()
            try:
                writer.write(req.encode())
                await writer.drain()
                status, headers, body = await asyncio.wait_for(read_response(reader), 30)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
                self.unexpected[(req.kind, f"error {type(e).__name__}")] += 1
                writer.close()
                reader = writer = None
                continue
            self.record(req, status, headers, body, time.monotonic() - t0)
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def one_off(self, req):
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, self.args.port)
            writer.write(req.encode())
            await writer.drain()
            status, headers, body = await asyncio.wait_for(read_response(reader), 30)
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            self.unexpected[(req.kind, f"error {type(e).__name__}")] += 1
            return
        self.record(req, status, headers, body, time.monotonic() - t0)

    def read_rss(self):
        try:
            with open(f"/proc/{self.args.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    async def sampler(self):
        while time.monotonic() < self.deadline:
            kb = self.read_rss()
            t = time.monotonic() - self.started
            if kb is None:
                self.unexpected[("server", "process gone")] += 1
                return
            self.rss.append((t, kb))
            print(f"[{t:6.0f} s] requests {self.requests:>9}  rss {kb / 1024:7.1f} MiB", flush=True)
            await asyncio.sleep(min(RSS_INTERVAL, max(0.0, self.deadline - time.monotonic())))

    async def run(self):
        self.started = time.monotonic()
        self.deadline = self.started + self.args.seconds
        tasks = [asyncio.create_task(self.connection(i)) for i in range(self.args.connections)]
        sampler = asyncio.create_task(self.sampler())
        await asyncio.gather(*tasks)
        await sampler
        end = self.read_rss()
        if end is None:
            self.unexpected[("server", "process gone at the end")] += 1
        else:
            self.rss.append((time.monotonic() - self.started, end))
        return time.monotonic() - self.started

    def report(self, duration):
        print()
        print(f"duration {duration:.0f} s, {self.args.connections} connections, {self.requests} requests "
              f"({self.requests / duration:.0f}/s)")
        lat = sorted(self.latencies)
        if lat:
            pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
            print(f"latency ms: p50 {pct(0.5):.1f}  p99 {pct(0.99):.1f}  max {lat[-1] * 1000:.1f}")
        print("\nrequests by kind and status:")
        for (kind, status), n in sorted(self.by_status.items()):
            print(f"  {n:>9}  {status}  {kind}")
        totals = Counter()
        for (_, status), n in self.by_status.items():
            totals[status] += n
        print("\nrequests by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(totals.items())))
        print("\nunexpected:", "none" if not self.unexpected else "")
        for (kind, what), n in sorted(self.unexpected.items()):
            print(f"  {n:>9}  {kind}: {what}")
            if (kind, what) in self.examples:
                print(f"             e.g. {self.examples[(kind, what)]}")
        # Point samples swing by whole argon2 buffers (19 MiB per login in flight), so growth is
        # judged on the floor: the lowest sample of the minute after warm-up against the lowest
        # of the last minute. Work in flight only adds to RSS; a leak raises the floor.
        base = next(((t, kb) for t, kb in self.rss if t >= self.args.warmup), None)
        end = self.rss[-1] if self.rss else None
        growth = None
        if base and end:
            point = (end[1] - base[1]) * 100.0 / base[1]
            print(f"\nRSS at {base[0]:.0f} s (after warm-up): {base[1] / 1024:.1f} MiB; "
                  f"at the end ({end[0]:.0f} s): {end[1] / 1024:.1f} MiB; point growth {point:+.2f} %")
            first = [kb for t, kb in self.rss if self.args.warmup <= t < self.args.warmup + 60]
            last = [kb for t, kb in self.rss if t >= end[0] - 60]
            if first and last and end[0] - 60 >= self.args.warmup + 60:
                growth = (min(last) - min(first)) * 100.0 / min(first)
                print(f"RSS floor {self.args.warmup:.0f}-{self.args.warmup + 60:.0f} s: {min(first) / 1024:.1f} MiB; "
                      f"floor of the last 60 s: {min(last) / 1024:.1f} MiB; growth {growth:+.2f} %")
            else:
                growth = point
                print("(run too short for floors: growth is the point growth)")
            print(f"RSS peak: {max(kb for _, kb in self.rss) / 1024:.1f} MiB")
            print("RSS samples (s: MiB): " + ", ".join(f"{t:.0f}: {kb / 1024:.1f}" for t, kb in self.rss))
        else:
            print("\nRSS: not enough samples after warm-up")
        failed = bool(self.unexpected) or growth is None or growth >= self.args.max_growth
        print(f"\nRESULT: {'FAIL' if failed else 'PASS'} (unexpected: {sum(self.unexpected.values())}, "
              f"RSS growth: {'n/a' if growth is None else f'{growth:+.2f} %'}, limit {self.args.max_growth} %)")
        return 1 if failed else 0


async def setup(port, users, admin):
    """Tokens, events and tickets through the API, as a client would make them."""

    async def call(method, path, fields):
        reader, writer = await asyncio.open_connection(HOST, port)
        req = Request("setup", method, path, set(), form(fields) if method == "POST" else None)
        writer.write(req.encode())
        await writer.drain()
        status, _, body = await read_response(reader)
        writer.close()
        return status, json.loads(body) if body else None

    async def login(user, pw):
        status, body = await call("POST", "/jars/token", [("user", user), ("password", pw)])
        assert status == 200, (user, status, body)
        return body["token"]

    owner_tokens = [await login(*users[0]) for _ in range(4)]
    other_token = await login(*users[1])
    admin_token = await login(*admin)
    world = {"owner_tokens": owner_tokens, "other_token": other_token, "admin_token": admin_token,
             "public": [], "private": [], "tickets": {}, "users": users + [admin]}
    for private in [False] * 4 + [True] * 4:
        status, body = await call(
            "POST", "/jars/create",
            [("auth", owner_tokens[0]), ("title", "soak"), ("description", "soak event"),
             ("private", "true" if private else "false")],
        )
        assert status == 201, (status, body)
        world["private" if private else "public"].append(body["event_id"])
    for event in world["private"]:
        world["tickets"][event] = []
        for _ in range(8):
            status, body = await call("POST", "/jars/ticket", [("auth", owner_tokens[0]), ("mount", event)])
            assert status == 200, (status, body)
            world["tickets"][event].append(body["ticket"])
    world["missing"] = "5e0b9230-086c-406f-a26c-13ff3a8d3880"
    # The original service's README token: valid signature for another key, long expired.
    world["expired_token"] = (
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjE1MjI0OTk2OTIsInN1YiI6NzQ0OSwiYWNjZXNzX2xldmVsIjoiQURNSU5fVVNFUiIsImlhdCI6MTUyMjQxMzI5MiwiaXNzIjoiamFycyJ9."
        "I5iPwJrPJ4mw-p0WBZxBxPFy4_U_LP0LTKZ9I_zXK7ygDhM30Ob3vIHLcQRzHkc-QoUsbIMr8o-V81s8QsdfN0VKqvEaaLQY67UlEpdTqlIEWYwjlvQFaCP6mgyVIxRXl0DUXu38XnKD54uGiqDBTs27Zg8AZJoPHJFyGg4DN20x4RYtzq02ssXeN21rJrwl6ApgRGaalYomx3fNUZuNEh0Me5oN7k0gGkkVIcKGgmW5Pml1uloN0nuSNCwek-Nd1AuwuMCrpx5S6YqZlROGqTIttwadV4LLU684I32V55tYZBhEQ9zUML68bcRKLtGq7-UlvnggXwf7QO_3_xSsbA"
    )
    return world


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the jars process, for its RSS")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--warmup", type=float, default=60, help="RSS baseline taken after this")
    p.add_argument("--max-requests", type=int, default=20_000_000, help="hard bound on requests")
    p.add_argument("--max-growth", type=float, default=10.0, help="RSS growth limit, percent")
    p.add_argument("--user", action="append", default=[], help="NAME:PASSWORD, first one owns the events")
    p.add_argument("--admin", required=True, help="NAME:PASSWORD")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    random.seed(args.seed)
    users = [tuple(u.split(":", 1)) for u in args.user]
    assert len(users) >= 2, "need an owner and another user"
    world = asyncio.run(setup(args.port, users, tuple(args.admin.split(":", 1))))
    print(f"set up: {len(world['public'])} public and {len(world['private'])} private events, "
          f"{sum(len(t) for t in world['tickets'].values())} tickets", flush=True)
    soak = Soak(args, world)
    duration = asyncio.run(soak.run())
    sys.exit(soak.report(duration))


if __name__ == "__main__":
    main()
