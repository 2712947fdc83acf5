#!/usr/bin/env python3
"""An SSE client for many_hosts_test.cpp: sse_client.py URL DEADLINE_SECONDS.

Reads the stream at URL and prints each event as one JSON line ({"id", "event", "data"}) on
stdout. When the connection drops, fails or stalls (no byte for 5 s; the server sends heartbeats),
or the server answers anything but 200, it reconnects after 0.5 s with Last-Event-ID set to the
last id received. After the batch.completed event it reads on until the server ends the stream
(then prints {"closed_by_server": true}) or 5 s pass, and exits with status 0; at the deadline
without batch.completed, status 1. Reconnections are logged on stderr.
"""
import http.client
import json
import sys
import time
import urllib.parse


def main():
    url = urllib.parse.urlsplit(sys.argv[1])
    deadline = time.monotonic() + float(sys.argv[2])
    last_id = None
    attempt = 0
    completed = False
    while time.monotonic() < deadline and not completed:
        attempt += 1
        if attempt > 1:
            print(f"reconnecting (attempt {attempt}, last id {last_id})", file=sys.stderr, flush=True)
            time.sleep(0.5)
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            conn.request("GET", url.path, headers=headers)
            res = conn.getresponse()
            if res.status != 200:
                print(f"status {res.status}", file=sys.stderr, flush=True)
                conn.close()
                continue
            event = {}
            while time.monotonic() < deadline:
                raw = res.readline()
                if not raw:  # closed by the server
                    if completed:
                        print(json.dumps({"closed_by_server": True}), flush=True)
                    break
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if "data" in event:
                        out = {"id": event.get("id"), "event": event.get("event", "message"),
                               "data": json.loads(event["data"])}
                        print(json.dumps(out), flush=True)
                        if event.get("id") is not None:
                            last_id = event["id"]
                        if out["event"] == "batch.completed" and not completed:
                            completed = True
                            deadline = min(deadline, time.monotonic() + 5)
                    event = {}
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "id":
                    event["id"] = int(value)
                elif field == "event":
                    event["event"] = value
                elif field == "data":
                    event["data"] = event["data"] + "\n" + value if "data" in event else value
            conn.close()
        except (OSError, http.client.HTTPException, ValueError) as e:
            print(f"connection error: {e!r}", file=sys.stderr, flush=True)
    if completed:
        return 0
    print("deadline passed", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
