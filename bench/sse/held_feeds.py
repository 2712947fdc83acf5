#!/usr/bin/env python3
"""A static feed server that holds every feed request until released.

usage: held_feeds.py PORTFILE
Listens on 127.0.0.1 (any free port, written to PORTFILE). GET /feed/<name>.xml answers a small
RSS document once POST /release has been received; until then the request waits.
POST /release?spread_ms=N lets each held request go at its own moment within N ms of the
release (a fixed pseudo-random order), instead of all at once.
"""
import random
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

released = threading.Event()
release = {"at": 0.0, "spread_s": 0.0}
delays = random.Random(42)
held = 0
held_lock = threading.Lock()

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>
<link>http://example.com/</link>{items}</channel></rss>"""
ITEM = "<item><guid>{name}-{i}</guid><title>item {i}</title><link>http://example.com/{name}/{i}</link></item>"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global held
        if self.path == "/held":
            with held_lock:
                body = str(held).encode()
        else:
            with held_lock:
                held += 1
            released.wait()
            with held_lock:
                delay = delays.uniform(0, release["spread_s"])
            time.sleep(max(0.0, release["at"] + delay - time.monotonic()))
            name = self.path.rsplit("/", 1)[-1]
            body = FEED.format(name=name, items="".join(ITEM.format(name=name, i=i) for i in range(5))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        spread_ms = parse_qs(urlsplit(self.path).query).get("spread_ms", ["0"])[0]
        release["spread_s"] = float(spread_ms) / 1000.0
        release["at"] = time.monotonic()
        released.set()
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
