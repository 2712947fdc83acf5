#!/usr/bin/env python3
"""Submits one batch to feedpipe and follows its SSE stream to batch.completed.
Prints one JSON line: seconds from POST to batch.completed, events, statuses, lag percentiles
(event ts, the commit time, to receipt)."""
import http.client
import json
import sys
import time

port, urls_file = int(sys.argv[1]), sys.argv[2]
feeds = [line.strip() for line in open(urls_file) if line.strip()]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
start = time.time()
conn.request("POST", "/v1/batches", json.dumps({"feeds": feeds}), {"Content-Type": "application/json"})
res = conn.getresponse()
body = json.loads(res.read())
accepted = time.time() - start
if res.status != 202:
    sys.exit(f"submit failed: {res.status} {body}")
stream = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
stream.request("GET", body["events_url"], headers={"Accept": "text/event-stream"})
resp = stream.getresponse()
events, lags, statuses, event = 0, [], {}, None
for raw in resp:
    line = raw.decode().rstrip("\n")
    if line.startswith("event:"):
        event = line[6:].strip()
    elif line.startswith("data:"):
        now_ms = time.time() * 1000
        data = json.loads(line[5:])
        events += 1
        lags.append(now_ms - data["ts"])
        if event != "batch.completed":
            statuses[data["status"]] = statuses.get(data["status"], 0) + 1
        if event == "batch.completed":
            break
elapsed = time.time() - start
lags.sort()
pct = lambda p: round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else None
print(json.dumps({"batch_id": body["batch_id"], "seconds": round(elapsed, 3),
                  "post_seconds": round(accepted, 3), "events": events,
                  "statuses": statuses, "lag_ms_p50": pct(0.50), "lag_ms_p99": pct(0.99),
                  "lag_ms_max": round(lags[-1], 1) if lags else None}))
