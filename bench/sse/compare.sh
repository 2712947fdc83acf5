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
python3 - "$OUT" "$ROUNDS" "$STREAMS" "${SPREAD_MS:-0}" <<'PY'
import re, statistics, sys
out, rounds, streams, spread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def figures(path):
    text = open(path).read()
    f = {}
    for key in ("conns_ok", "failed", "ended_by_server", "events", "min_events_per_conn", "missed", "repeated", "p50_ms", "p99_ms", "max_ms"):
        m = re.search(rf"\b{key}=([\d.]+)", text)
        f[key] = float(m.group(1)) if m else float("nan")
    m = re.search(r"kb_per_stream_total=([\d.]+)", text); f["kb"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"([\d.]+) us per delivered event", text); f["us"] = float(m.group(1)) if m else float("nan")
    return f
mode = "burst: every feed released at once" if spread == "0" else f"completions spread over {spread} ms"
print(f"{streams} streams, {mode}, median of {rounds} alternating runs")
print("| server | streams held / failed | events (min per stream) | missed / repeated | ended by server | latency p50 / p99 / max (ms) | KB per stream | server CPU µs per event |")
print("|---|---|---|---|---|---|---|---|")
for name in ("feedpipe", "nchan"):
    runs = [figures(f"{out}/{name}.{r}") for r in range(1, rounds + 1)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"| {name} | {med['conns_ok']:.0f} / {med['failed']:.0f} | {med['events']:.0f} ({med['min_events_per_conn']:.0f}) | {med['missed']:.0f} / {med['repeated']:.0f} | "
          f"{med['ended_by_server']:.0f} | {med['p50_ms']:.1f} / {med['p99_ms']:.1f} / {med['max_ms']:.1f} | "
          f"{med['kb']:.1f} | {med['us']:.1f} |")
    for i, r in enumerate(runs, 1):
        print(f"|   run {i} | | {r['events']:.0f} | {r['missed']:.0f} / {r['repeated']:.0f} | | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} / {r['max_ms']:.1f} | {r['kb']:.1f} | {r['us']:.1f} |")
PY
