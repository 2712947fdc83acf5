#!/usr/bin/env bash
# SSE fan-out benchmark: N streams over M batches of F feeds.
#
#   bench/sse/run.sh BUILD_DIR [STREAMS=10000] [BATCHES=10] [FEEDS=30]
#
# SHAPE picks what serves them (default standalone):
#   standalone  one `feedpipe standalone --consumers 1` process;
#   roles       the one-host shape operators run: kafka-mock, producer --db, consumer --db and
#               broadcaster --db as separate processes (every event crosses Kafka);
#   many        the many-hosts shape on this machine: kafka-mock, producer --db, recorder --db, a
#               consumer without a database (outcomes cross Kafka too), broadcaster --api.
# The streams are held by (and memory and CPU read from) the standalone or broadcaster process.
#
# Needs BUILD_DIR/feedpipe and BUILD_DIR/bench/sse/sse_load (both built by scripts/build.sh).
# Starts a feed server that holds every request, the standalone process, submits the batches,
# opens the streams with sse_load, releases the feeds and prints sse_load's line (every stream
# must get FEEDS + 1 events; missed and repeated count the ones it did not get exactly once), the
# server's resident memory per open stream (from /proc/PID/status, total and above the
# pre-stream baseline) and its CPU per delivered event.
# PERF_OUT=FILE records a system-wide `perf record -g` from the release to the end of the load.
# FEEDPIPE_BENCH_ARGS adds flags to the standalone (or, in the roles shape, the consumer) command line,
# BROADCASTER_BENCH_ARGS to the broadcaster's. SPREAD_MS=N answers the held feeds
# at pseudo-random moments within N ms of the release instead of all at once (default 0: a burst).
# WATCH=K: every stream watches K of the batches on one GET /v1/events?batch=…&batch=… (each
# K-combination of the batches in turn, so every batch has STREAMS*K/BATCHES watchers) and must get
# K * (FEEDS + 1) events, each batch's once and in order; e.g. `WATCH=3 run.sh build 10000 10 30`
# is the case of issue 18: 10,000 streams, each watching 3 of 10 batches.
# A burst runs with default settings, so the fetcher's 32 connections per host (every feed here is
# on one host) stagger the completions; with SPREAD_MS every feed is requested at once, so that
# the completions follow the spread.
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [STREAMS] [BATCHES] [FEEDS]}
STREAMS=${2:-10000}
BATCHES=${3:-10}
FEEDS=${4:-30}
WATCH=${WATCH:-0}
EXPECTED=$((FEEDS + 1))
((WATCH > 0)) && EXPECTED=$((WATCH * (FEEDS + 1)))
HERE=$(cd "$(dirname "$0")" && pwd)
FEEDPIPE=$BUILD/feedpipe
source "$HERE/measure.sh"
find_sse_load "$BUILD" || exit 1
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done  # the broker last
  wait 2>/dev/null || true
  [[ -n ${KEEP_WORK:-} ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

python3 "$HERE/held_feeds.py" "$WORK/feedport" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $WORK/feedport ]] && break; sleep 0.1; done
FEEDPORT=$(cat "$WORK/feedport")
PORT=$(python3 "$HERE/../free_port.py")
SPREAD_ARGS=()
((${SPREAD_MS:-0} > 0)) && SPREAD_ARGS=(--fetch-max-host-connections $((BATCHES * FEEDS)))
FETCH_ARGS=(--allow-private-networks --fetch-low-speed-seconds 600 --fetch-timeout-ms 600000
  --job-deadline-ms 900000 ${SPREAD_ARGS[@]+"${SPREAD_ARGS[@]}"})
free_port() { python3 "$HERE/../free_port.py"; }
wait_ready() { for _ in $(seq 150); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.2; done; echo "port $1 not ready" >&2; return 1; }

case ${SHAPE:-standalone} in
  standalone)
    "$FEEDPIPE" standalone --http "127.0.0.1:$PORT" --db "$WORK/feedpipe.db" --consumers 1 "${FETCH_ARGS[@]}" \
      --log-level warn ${FEEDPIPE_BENCH_ARGS:-} >"$WORK/server.log" 2>&1 &
    SERVER=$!
    PIDS+=($SERVER)
    API_PORT=$PORT
    wait_ready "$PORT"
    ;;
  roles | many)
    "$FEEDPIPE" kafka-mock --log-level warn >"$WORK/brokers" 2>"$WORK/kafka-mock.log" &
    PIDS+=($!)
    for _ in $(seq 300); do [[ -s $WORK/brokers ]] && break; sleep 0.1; done
    BROKERS=$(head -1 "$WORK/brokers")
    [[ -n $BROKERS ]] || { echo "kafka-mock printed no address in 30 s" >&2; tail -n 20 "$WORK/kafka-mock.log" >&2; exit 1; }
    "$FEEDPIPE" migrate --db "$WORK/feedpipe.db" >/dev/null 2>&1
    API_PORT=$(free_port)
    COMMON=(--brokers "$BROKERS" --log-level warn)
    DB=(--db "$WORK/feedpipe.db")
    "$FEEDPIPE" producer --http "127.0.0.1:$API_PORT" "${DB[@]}" "${COMMON[@]}" >"$WORK/producer.log" 2>&1 &
    PIDS+=($!)
    FETCH_DB=("${DB[@]}")
    EDGE_SOURCE=("${DB[@]}")
    if [[ $SHAPE == many ]]; then  # the many-hosts shape on this machine
      RECORDER_PORT=$(free_port)
      "$FEEDPIPE" recorder --http "127.0.0.1:$RECORDER_PORT" "${DB[@]}" "${COMMON[@]}" >"$WORK/recorder.log" 2>&1 &
      PIDS+=($!)
      wait_ready "$RECORDER_PORT"
      FETCH_DB=()
      EDGE_SOURCE=(--api "http://127.0.0.1:$API_PORT")
    fi
    CONSUMER_PORT=$(free_port)
    "$FEEDPIPE" consumer --http "127.0.0.1:$CONSUMER_PORT" "${COMMON[@]}" ${FETCH_DB[@]+"${FETCH_DB[@]}"} "${FETCH_ARGS[@]}" ${FEEDPIPE_BENCH_ARGS:-} \
      >"$WORK/consumer.log" 2>&1 &
    PIDS+=($!)
    "$FEEDPIPE" broadcaster --http "127.0.0.1:$PORT" "${COMMON[@]}" "${EDGE_SOURCE[@]}" ${BROADCASTER_BENCH_ARGS:-} >"$WORK/server.log" 2>&1 &
    SERVER=$!
    PIDS+=($SERVER)
    wait_ready "$API_PORT"
    wait_ready "$CONSUMER_PORT"
    wait_ready "$PORT"
    ;;
  *) echo "unknown SHAPE=$SHAPE (standalone, roles or many)" >&2; exit 2 ;;
esac

: >"$WORK/paths"
for b in $(seq "$BATCHES"); do
  feeds=$(python3 -c "import json,sys; print(json.dumps({'feeds':['http://127.0.0.1:$FEEDPORT/feed/b$b-f%d.xml' % i for i in range($FEEDS)]}))")
  id=$(curl -fs -X POST -H 'Content-Type: application/json' -d "$feeds" "http://127.0.0.1:$API_PORT/v1/batches" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["batch_id"])')
  echo "/v1/batches/$id/events" >>"$WORK/paths"
  echo "$id" >>"$WORK/batch_ids"
done
if ((WATCH > 0)); then  # streams of many batches: one path per K-combination of the batches
  python3 - "$WORK/batch_ids" "$WATCH" >"$WORK/paths" <<'PY'
import itertools, sys
ids = open(sys.argv[1]).read().split()
for combo in itertools.combinations(ids, int(sys.argv[2])):
    print("/v1/events?" + "&".join("batch=" + i for i in combo))
PY
fi

open_streams
if [[ -n ${PERF_OUT:-} ]]; then  # profile the whole machine from the release to the end of the load
  perf record -a -g -o "$PERF_OUT" >/dev/null 2>&1 &
  PERF=$!
  sleep 0.5
fi
curl -fs -X POST "http://127.0.0.1:$FEEDPORT/release?spread_ms=${SPREAD_MS:-0}" >/dev/null
report
if [[ -n ${PERF:-} ]]; then kill -INT "$PERF"; wait "$PERF" || true; fi
# Where the latency goes, from the server's own histograms (p50/p99 are bucket upper bounds):
# commit -> arrival at the broadcaster, and event ts -> written to the client's socket.
curl -fs "http://127.0.0.1:$PORT/metrics" | awk '
  function pct(name, label,   i, p50, p99) {
    if (total[name] == 0) return
    p50 = p99 = ""
    for (i = 1; i <= n[name]; i++) {
      if (p50 == "" && c[name, i] >= total[name] * 0.5) p50 = b[name, i]
      if (p99 == "" && c[name, i] >= total[name] * 0.99) p99 = b[name, i]
    }
    printf "%s: %d, p50 <= %s s, p99 <= %s s\n", label, total[name], p50, p99
  }
  /^feedpipe_event_(arrival_lag|delivery_latency)_seconds_bucket/ {
    name = $1; sub(/_bucket.*/, "", name); match($0, /le="[^"]*"/)
    i = ++n[name]; b[name, i] = substr($0, RSTART + 4, RLENGTH - 5); c[name, i] = $2
  }
  /^feedpipe_event_(arrival_lag|delivery_latency)_seconds_count/ { name = $1; sub(/_count.*/, "", name); total[name] = $2 }
  END {
    pct("feedpipe_event_arrival_lag_seconds", "events arriving at the broadcaster (commit -> hub)")
    pct("feedpipe_event_delivery_latency_seconds", "deliveries (event ts -> written to the socket)")
  }'
