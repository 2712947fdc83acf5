#!/usr/bin/env python3
"""A static feed server that holds every feed request until released.

usage: held_feeds.py PORTFILE
Listens on 127.0.0.1 (any free port, written to PORTFILE). GET /feed/<name>.xml answers a small
RSS document once POST /release has been received; until then the request waits.
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

released = threading.Event()
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
            name = self.path.rsplit("/", 1)[-1]
            body = FEED.format(name=name, items="".join(ITEM.format(name=name, i=i) for i in range(5))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        released.set()
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
