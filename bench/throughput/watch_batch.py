#!/usr/bin/env python3
"""Submits one batch to feedpipe and follows its SSE stream to batch.completed.
usage: watch_batch.py API_PORT URLS_FILE [STREAM_PORT]
Prints one JSON line: seconds from POST to batch.completed, events, statuses, lag percentiles
(event ts, the commit time, to receipt)."""
import http.client
import json
import re
import sys
import time

port, urls_file = int(sys.argv[1]), sys.argv[2]
stream_port = int(sys.argv[3]) if len(sys.argv) > 3 else port  # the broadcaster, in the roles shape
feeds = [line.strip() for line in open(urls_file) if line.strip()]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
body = json.dumps({"feeds": feeds})  # the client's own work (14 ms for 20,000 URLs): before the clock
start = time.time()
conn.request("POST", "/v1/batches", body, {"Content-Type": "application/json"})
res = conn.getresponse()
body = json.loads(res.read())
accepted = time.time() - start
if res.status != 202:
    sys.exit(f"submit failed: {res.status} {body}")
stream = http.client.HTTPConnection("127.0.0.1", stream_port, timeout=600)
stream.request("GET", body["events_url"], headers={"Accept": "text/event-stream"})
resp = stream.getresponse()
# The stream is read in large chunks and each event's fields are picked out with regular
# expressions: parsing every line and every JSON object took a tenth of this 2-core machine's
# CPU during a fast pass, beside the service being measured.
EVENT, STATUS, TS = re.compile(rb"^event: ?(\S+)", re.M), re.compile(rb'"status":"([a-z_]+)"'), re.compile(rb'"ts":(\d+)')
events, lags, statuses, buffer, completed = 0, [], {}, b"", False
while not completed:
    chunk = resp.read1(1 << 16)
    if not chunk:
        break
    now_ms = time.time() * 1000
    buffer += chunk
    *blocks, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
    for block in blocks:
        ts = TS.search(block)
        if not ts:
            continue  # a comment (heartbeat) or a retry: line
        events += 1
        lags.append(now_ms - int(ts.group(1)))
        event = EVENT.search(block)
        if event and event.group(1) == b"batch.completed":
            completed = True
            break
        status = STATUS.search(block).group(1).decode()
        statuses[status] = statuses.get(status, 0) + 1
elapsed = time.time() - start
lags.sort()
pct = lambda p: round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else None
print(json.dumps({"batch_id": body["batch_id"], "seconds": round(elapsed, 3),
                  "post_seconds": round(accepted, 3), "events": events,
                  "statuses": statuses, "lag_ms_p50": pct(0.50), "lag_ms_p99": pct(0.99),
                  "lag_ms_max": round(lags[-1], 1) if lags else None}))
