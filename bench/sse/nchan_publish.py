#!/usr/bin/env python3
"""Publishes feedpipe-shaped events to nginx's nchan, as the peer of bench/sse/run.sh.

usage: nchan_publish.py PORT BATCHES FEEDS SPREAD_MS
Channel b1..bBATCHES each get FEEDS job events and a final batch.completed, with the same JSON
shape and size as feedpipe's (so both servers move the same bytes). Each job event is due at a
pseudo-random moment within SPREAD_MS of the start (0: all at once); batch.completed is due with
its channel's last job; then a DELETE ends the channel's streams. "ts" is the moment an event was
due, like feedpipe's commit time: a publish that waits for nchan to finish fanning out the
previous one (publishing is synchronous) counts that wait in the latency, as feedpipe's does.
"""
import http.client
import json
import random
import sys
import threading
import time

port, batches, feeds, spread_ms = (int(a) for a in sys.argv[1:5])
rng = random.Random(42)
start = time.monotonic() + 0.05
start_epoch = time.time() + 0.05


def event(batch, seq, done, due):
    data = {"position": seq - 1, "url": f"http://127.0.0.1:{port}/feed/b{batch}-f{seq - 1}.xml",
            "feed_id": batch * 1000 + seq, "status": "ok", "http_status": 200, "items_new": 5,
            "items_total": 5, "duration_ms": 12, "error": None,
            "progress": {"total": feeds, "done": done, "failed": 0},
            "seq": seq, "batch_id": f"{batch:032x}", "ts": int(due * 1000)}
    return json.dumps(data, separators=(",", ":"))


def publish_channel(batch, offsets):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    offsets = sorted(offsets)
    for seq, offset in enumerate(offsets, start=1):
        time.sleep(max(0.0, start + offset - time.monotonic()))
        conn.request("POST", f"/pub/b{batch}", body=event(batch, seq, seq, start_epoch + offset))
        conn.getresponse().read()
    conn.request("POST", f"/pub/b{batch}", body=event(batch, feeds + 1, feeds, start_epoch + offsets[-1]))
    conn.getresponse().read()
    conn.request("DELETE", f"/pub/b{batch}")
    conn.getresponse().read()


threads = []
for b in range(1, batches + 1):
    offsets = [rng.uniform(0, spread_ms / 1000.0) for _ in range(feeds)]
    threads.append(threading.Thread(target=publish_channel, args=(b, offsets)))
for t in threads:
    t.start()
for t in threads:
    t.join()
