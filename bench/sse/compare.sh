#!/usr/bin/env bash
# feedpipe against nginx + nchan under the same SSE load, alternating, ROUNDS times each, and the
# medians of both: streams, events, latency p50/p99/max, KB per stream, server CPU per event.
#
#   bench/sse/compare.sh BUILD_DIR [STREAMS=10000] [BATCHES=10] [FEEDS=30] [ROUNDS=3]
#
# SPREAD_MS (default 0) as in run.sh: 0 releases every feed at once (a burst of 300 completions
# fanned out to all streams), N spreads the completions over N ms.
set -euo pipefail
BUILD=${1:?usage: compare.sh BUILD_DIR [STREAMS] [BATCHES] [FEEDS] [ROUNDS]}
STREAMS=${2:-10000}
BATCHES=${3:-10}
FEEDS=${4:-30}
ROUNDS=${5:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for r in $(seq "$ROUNDS"); do
  "$HERE/run.sh" "$BUILD" "$STREAMS" "$BATCHES" "$FEEDS" >"$OUT/feedpipe.$r" 2>&1 || true
  "$HERE/nchan.sh" "$BUILD" "$STREAMS" "$BATCHES" "$FEEDS" >"$OUT/nchan.$r" 2>&1 || true
done
python3 "$HERE/summary.py" "$OUT" "$ROUNDS" "$STREAMS" "${SPREAD_MS:-0}" feedpipe nchan
