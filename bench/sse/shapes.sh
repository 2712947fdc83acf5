#!/usr/bin/env bash
# The deployment shapes under the same SSE load, alternating, ROUNDS times each, and the medians:
# `standalone --consumers 1` against the roles as separate processes (kafka-mock, producer,
# consumer, broadcaster; every event crosses Kafka). See run.sh for the load.
#
#   bench/sse/shapes.sh BUILD_DIR [STREAMS=10000] [BATCHES=10] [FEEDS=30] [ROUNDS=3]
#
# SHAPES (default "standalone roles") picks the shapes; the first is the one the others are
# compared with. SPREAD_MS as in run.sh.
set -euo pipefail
BUILD=${1:?usage: shapes.sh BUILD_DIR [STREAMS] [BATCHES] [FEEDS] [ROUNDS]}
STREAMS=${2:-10000}
BATCHES=${3:-10}
FEEDS=${4:-30}
ROUNDS=${5:-3}
read -ra NAMES <<<"${SHAPES:-standalone roles}"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for r in $(seq "$ROUNDS"); do
  for shape in "${NAMES[@]}"; do
    SHAPE=$shape "$HERE/run.sh" "$BUILD" "$STREAMS" "$BATCHES" "$FEEDS" >"$OUT/$shape.$r" 2>&1 || true
  done
done
python3 "$HERE/summary.py" "$OUT" "$ROUNDS" "$STREAMS" "${SPREAD_MS:-0}" "${NAMES[@]}"
