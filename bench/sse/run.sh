#!/usr/bin/env bash
# SSE fan-out benchmark: N streams over M batches of F feeds on one `feedpipe standalone`.
#
#   bench/sse/run.sh BUILD_DIR [STREAMS=10000] [BATCHES=10] [FEEDS=30]
#
# Needs BUILD_DIR/feedpipe and BUILD_DIR/bench/sse/sseload (built from ../shared/tools/sseload;
# without it the benchmark is skipped). Starts a feed server that holds every request, the
# standalone process, submits the batches, opens the streams with sseload, releases the feeds
# and prints sseload's line, the server's resident memory per open stream (from
# /proc/PID/status, total and above the pre-stream baseline) and its CPU per delivered event.
# FEEDPIPE_BENCH_ARGS adds flags to the standalone command line. SPREAD_MS=N answers the held feeds
# at pseudo-random moments within N ms of the release instead of all at once (default 0: a burst).
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [STREAMS] [BATCHES] [FEEDS]}
STREAMS=${2:-10000}
BATCHES=${3:-10}
FEEDS=${4:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
FEEDPIPE=$BUILD/feedpipe
source "$HERE/measure.sh"
find_sseload "$BUILD/bench/sse/sseload" || exit 0
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 "$HERE/held_feeds.py" "$WORK/feedport" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $WORK/feedport ]] && break; sleep 0.1; done
FEEDPORT=$(cat "$WORK/feedport")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$FEEDPIPE" standalone --http "127.0.0.1:$PORT" --db "$WORK/feedpipe.db" --allow-private-networks \
  --consumers 1 --fetch-low-speed-seconds 600 --fetch-timeout-ms 600000 --job-deadline-ms 900000 \
  --log-level warn ${FEEDPIPE_BENCH_ARGS:-} >"$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

: >"$WORK/paths"
for b in $(seq "$BATCHES"); do
  feeds=$(python3 -c "import json,sys; print(json.dumps({'feeds':['http://127.0.0.1:$FEEDPORT/feed/b$b-f%d.xml' % i for i in range($FEEDS)]}))")
  id=$(curl -fs -X POST -H 'Content-Type: application/json' -d "$feeds" "http://127.0.0.1:$PORT/v1/batches" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["batch_id"])')
  echo "/v1/batches/$id/events" >>"$WORK/paths"
done

open_streams
curl -fs -X POST "http://127.0.0.1:$FEEDPORT/release?spread_ms=${SPREAD_MS:-0}" >/dev/null
report
# Where the latency goes: commit → arrival from Kafka at the broadcaster (p50/p99 from buckets).
curl -fs "http://127.0.0.1:$PORT/metrics" | awk '
  /^feedpipe_event_arrival_lag_seconds_bucket/ { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); b[++n] = le; c[n] = $2 }
  /^feedpipe_event_arrival_lag_seconds_count/ { total = $2 }
  END { if (total > 0) { p50 = p99 = ""; for (i = 1; i <= n; i++) { if (p50 == "" && c[i] >= total * 0.5) p50 = b[i]; if (p99 == "" && c[i] >= total * 0.99) p99 = b[i] }
        printf "broker path (commit -> broadcaster): %d events, p50 <= %s s, p99 <= %s s\n", total, p50, p99 } }'
