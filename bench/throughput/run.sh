#!/usr/bin/env bash
# End-to-end refresh throughput, feedpipe against newsboat and bare curl, in one run.
#   bench/throughput/run.sh [FEEDS=20000] [NEWSBOAT_FEEDS=2000]
# Serves ten-item feeds from nginx on 127.0.0.1 (etag on), then times:
#   newsboat -x reload (reload-threads 32) over NEWSBOAT_FEEDS feeds,
#   feedpipe standalone over FEEDS feeds, one batch, POST → batch.completed over SSE, twice
#   (the second pass is all conditional GETs answered 304),
#   curl --parallel --parallel-max 64 downloading the same FEEDS feeds.
# Prints feeds/s, the ratios, event lag percentiles and CPU seconds per 1,000 feeds.
# PERF_OUT=FILE records `perf record --call-graph dwarf` of feedpipe through the second pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
FEEDS=${1:-20000}
NEWSBOAT_FEEDS=${2:-2000}
ITEMS=10

need=()
for p in nginx newsboat curl python3; do command -v "$p" >/dev/null || need+=("$p"); done
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
FEEDPIPE_BIN=${FEEDPIPE_BIN:-build/feedpipe}
[[ -x "$FEEDPIPE_BIN" ]] || scripts/build.sh

source bench/throughput/lib.sh
make_workdir bench

echo "generating $FEEDS feeds of $ITEMS items"
serve_feeds
ls "$work/feeds" | sed "s|^|http://127.0.0.1:$NGINX_PORT/|" > "$work/urls.txt"
head -n "$NEWSBOAT_FEEDS" "$work/urls.txt" > "$work/urls-newsboat.txt"

now() { date +%s.%N; }
rate() { python3 -c "print(round($1 / ($3 - $2), 1))"; }

echo "newsboat over $NEWSBOAT_FEEDS feeds"
printf 'reload-threads 32\n' > "$work/newsboat.conf"
t0=$(now)
newsboat -x reload -u "$work/urls-newsboat.txt" -c "$work/newsboat.db" -C "$work/newsboat.conf" >/dev/null 2>&1
t1=$(now)
newsboat_rate=$(rate "$NEWSBOAT_FEEDS" "$t0" "$t1")

echo "curl --parallel over $FEEDS feeds"
sed 's|^\(.*\)$|url = "\1"\noutput = "/dev/null"|' "$work/urls.txt" > "$work/curl.cfg"
t0=$(now)
curl -s --no-progress-meter --parallel --parallel-max 64 -K "$work/curl.cfg"
t1=$(now)
curl_rate=$(rate "$FEEDS" "$t0" "$t1")

echo "feedpipe standalone over $FEEDS feeds"
start_feedpipe
cpu() { awk '{print $14 + $15}' "/proc/$fp/stat"; }
tick=$(getconf CLK_TCK)
c0=$(cpu)
first=$(python3 bench/throughput/watch_batch.py "$FP_PORT" "$work/urls.txt")
c1=$(cpu)
if [[ -n ${PERF_OUT:-} ]]; then  # profile feedpipe through the second pass
  perf record -F 999 --call-graph dwarf -p "$fp" -o "$PERF_OUT" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 0.5
fi
second=$(python3 bench/throughput/watch_batch.py "$FP_PORT" "$work/urls.txt")
c2=$(cpu)
if [[ -n ${perf_pid:-} ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$fp/status")

python3 - "$FEEDS" "$NEWSBOAT_FEEDS" "$newsboat_rate" "$curl_rate" "$first" "$second" "$c0" "$c1" "$c2" "$tick" "$rss_kb" <<'PY'
import json, sys
feeds, nb_feeds = int(sys.argv[1]), int(sys.argv[2])
nb, curl = float(sys.argv[3]), float(sys.argv[4])
first, second = json.loads(sys.argv[5]), json.loads(sys.argv[6])
c0, c1, c2, tick = (float(x) for x in sys.argv[7:11])
rss_mb = int(sys.argv[11]) / 1024
r1, r2 = feeds / first["seconds"], feeds / second["seconds"]
cpu1, cpu2 = (c1 - c0) / tick, (c2 - c1) / tick
print()
print(f"| run | feeds | feeds/s | vs newsboat | vs curl | lag p50 / p99 / max (ms) | CPU s per 1,000 feeds |")
print(f"|---|---|---|---|---|---|---|")
print(f"| newsboat -x reload (32 threads) | {nb_feeds} | {nb:.0f} | 1.0× | {nb / curl:.3f} | | |")
print(f"| curl --parallel 64 (download only) | {feeds} | {curl:.0f} | {curl / nb:.1f}× | 1.0 | | |")
for name, r, run, cpu in (("feedpipe standalone, first pass", r1, first, cpu1),
                          ("feedpipe standalone, second pass (304)", r2, second, cpu2)):
    print(f"| {name} | {feeds} | {r:.0f} | {r / nb:.1f}× | {r / curl:.2f} | "
          f"{run['lag_ms_p50']} / {run['lag_ms_p99']} / {run['lag_ms_max']} | {1000 * cpu / feeds:.2f} |")
print()
print(f"first pass: {json.dumps(first)}")
print(f"second pass: {json.dumps(second)}")
print(f"feedpipe resident memory after both passes: {rss_mb:.0f} MB")
ok = first["events"] == feeds + 1 and second["events"] == feeds + 1
print("every job's event delivered" if ok else "MISSING EVENTS")
PY
