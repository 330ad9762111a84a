#!/usr/bin/env python3
"""Scenario 8 of bench/run: an Icecast 2.4 admin API that lists one live mount with COUNT
listeners, for timing jars' resync of a large audience without 100,000 real connections.

  fake_admin.py --port PORT --mount /<event>.mp3 --count 100000

Serves /admin/listmounts and /admin/listclients?mount=… (Basic auth not checked) with the
XML Icecast 2.4.4 writes, each listener with a realistic user agent; the same client ids on
every request, so that after the first resync jars has nothing to change. Loopback only.
"""
import argparse
import http.server
import urllib.parse

AGENTS = [
    "VLC/3.0.18 LibVLC/3.0.18",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Lavf/60.16.100",
    "iTunes/12.12 (Macintosh; OS X 14.1)",
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mount", required=True)
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args()
    mount = a.mount.replace("&", "&amp;")
    mounts = (
        '<?xml version="1.0"?>\n<icestats><source mount="%s"><fallback></fallback>'
        "<listeners>%d</listeners><Connected>3600</Connected><content-type>audio/mpeg"
        "</content-type></source></icestats>\n" % (mount, a.count)
    ).encode()
    parts = ['<?xml version="1.0"?>\n<icestats><source mount="%s"><Listeners>%d</Listeners>' % (mount, a.count)]
    for i in range(a.count):
        parts.append(
            "<listener><IP>198.51.%d.%d</IP><UserAgent>%s</UserAgent><Connected>%d</Connected>"
            "<ID>%d</ID></listener>" % ((i >> 8) % 256, i % 256, AGENTS[i % len(AGENTS)], 60 + i % 3000, 1000 + i)
        )
    parts.append("</source></icestats>\n")
    clients = "".join(parts).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            body = mounts if url.path == "/admin/listmounts" else clients if url.path == "/admin/listclients" else None
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"fake admin API on 127.0.0.1:{a.port}: {a.count} listeners, {len(clients)} bytes", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
