#!/usr/bin/env bash
# End-to-end refresh throughput, feedpipe against newsboat and bare curl, in one run.
#   bench/throughput/run.sh [FEEDS=20000] [NEWSBOAT_FEEDS=2000]
# Serves ten-item feeds from nginx on 127.0.0.1 (etag on), then times:
#   newsboat -x reload (reload-threads 32) over NEWSBOAT_FEEDS feeds,
#   feedpipe over FEEDS feeds, one batch, POST → batch.completed over SSE, twice (the second pass
#   is all conditional GETs answered 304), in each shape of SHAPES (default "standalone roles"):
#   standalone (one process); roles (kafka-mock, producer, CONSUMERS consumers — default one per
#   core, as standalone — and a broadcaster, each a process; CPU and memory summed over them); many
#   (the many-hosts shape on this machine: a recorder, consumers without a database, broadcaster --api),
#   curl --parallel --parallel-max 64 downloading the same FEEDS feeds.
# Prints feeds/s, the ratios, event lag percentiles and CPU seconds per 1,000 feeds (curl's too: what
# the download alone costs on this machine).
# PERF_OUT=FILE records `perf record --call-graph dwarf` of every process of the shape PERF_SHAPE
# (default standalone) through its pass PERF_PASS (first or second, the default).
set -euo pipefail
cd "$(dirname "$0")/../.."
FEEDS=${1:-20000}
NEWSBOAT_FEEDS=${2:-2000}
ITEMS=10

need=()
for p in nginx newsboat curl python3; do command -v "$p" >/dev/null || need+=("$p"); done
[[ -x /usr/bin/time ]] || need+=(time)
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
/usr/bin/time -f '%U %S' -o "$work/curl.cpu" curl -s --no-progress-meter --parallel --parallel-max 64 -K "$work/curl.cfg"
t1=$(now)
curl_rate=$(rate "$FEEDS" "$t0" "$t1")
curl_cpu=$(awk '{print $1 + $2}' "$work/curl.cpu")  # user + system seconds: what the download alone costs

tick=$(getconf CLK_TCK)
start_perf() {
  [[ -n ${PERF_OUT:-} && $1 == "${PERF_SHAPE:-standalone}" ]] || return 0
  perf record -F 999 --call-graph dwarf -p "$(IFS=,; echo "${fp_pids[*]}")" -o "$PERF_OUT" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 0.5
}
stop_perf() {
  if [[ -n ${perf_pid:-} ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=; fi
}

# Each shape: two passes (the second all 304), CPU of every process of the shape, resident memory.
measure_shape() {
  local shape=$1 c0 c1 c2 w0 w1 w2 t0 t1 t2 first second
  echo "feedpipe $shape over $FEEDS feeds"
  case $shape in
    standalone) start_feedpipe ;;
    roles) start_roles ;;
    many) start_roles many ;;
    *) echo "unknown shape $shape (standalone, roles or many)" >&2; exit 2 ;;
  esac
  c0=$(cpu_ticks) w0=$(written_bytes) t0=$(thread_ticks)
  [[ ${PERF_PASS:-second} == first ]] && start_perf "$shape"
  first=$(python3 bench/throughput/watch_batch.py "$FP_PORT" "$work/urls.txt" "$FP_STREAM_PORT")
  stop_perf
  c1=$(cpu_ticks) w1=$(written_bytes) t1=$(thread_ticks)
  [[ ${PERF_PASS:-second} == second ]] && start_perf "$shape"
  second=$(python3 bench/throughput/watch_batch.py "$FP_PORT" "$work/urls.txt" "$FP_STREAM_PORT")
  stop_perf
  c2=$(cpu_ticks) w2=$(written_bytes) t2=$(thread_ticks)
  # CPU per thread name in each pass (threads that ended during a pass are not counted).
  python3 - "$shape" "$t0" "$t1" "$t2" "$(getconf CLK_TCK)" <<'PY'
import sys
shape, tick = sys.argv[1], float(sys.argv[5])
snaps = [dict((k, int(v)) for k, v in (e.rsplit(":", 1) for e in a.split())) for a in sys.argv[2:5]]
for label, a, b in (("first", snaps[0], snaps[1]), ("second", snaps[1], snaps[2])):
    used = sorted(((b[k] - a.get(k, 0)) / tick, k) for k in b if b[k] - a.get(k, 0) > 0)
    print(f"  {shape} {label} pass, CPU s by thread: " + ", ".join(f"{k} {s:.2f}" for s, k in reversed(used)))
PY
  # Outcomes per writer transaction, summed over the processes that write them (writer_ports).
  for p in "${writer_ports[@]}"; do curl -s "127.0.0.1:$p/metrics"; done | awk -v shape="$shape" '
    /^feedpipe_outcome_group_size_sum/ {sum += $2} /^feedpipe_outcome_group_size_count/ {n += $2}
    /^feedpipe_sqlite_checkpoints_total/ {ck += $2} /^feedpipe_sqlite_busy_wait_seconds_total/ {busy += $2}
    END {if (n) printf "  %s writers, both passes: %d transactions, %.1f outcomes each, %d WAL checkpoints, %.2f s waiting for another process'"'"'s lock\n", shape, n, sum / n, ck, busy}' || true
  results+=("{\"shape\": \"$shape\", \"first\": $first, \"second\": $second, \"cpu\": [$c0, $c1, $c2], \"written\": [$w0, $w1, $w2], \"rss_kb\": $(rss_total_kb)}")
  stop_feedpipe
}
results=()
read -ra shapes <<<"${SHAPES:-standalone roles}"
for shape in "${shapes[@]}"; do measure_shape "$shape"; done

python3 - "$FEEDS" "$NEWSBOAT_FEEDS" "$newsboat_rate" "$curl_rate" "$tick" "$curl_cpu" "${results[@]}" <<'PY'
import json, sys
feeds, nb_feeds = int(sys.argv[1]), int(sys.argv[2])
nb, curl, tick, curl_cpu = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
shapes = [json.loads(a) for a in sys.argv[7:]]
names = {"standalone": "feedpipe standalone",
         "roles": "feedpipe roles, one host (kafka-mock, producer, consumers --db, broadcaster)",
         "many": "feedpipe roles, many hosts (kafka-mock, producer, recorder, consumers without a database, broadcaster --api)"}
print()
print(f"| run | feeds | feeds/s | vs newsboat | vs curl | lag p50 / p99 / max (ms) | CPU s per 1,000 feeds | MB written per 1,000 feeds |")
print(f"|---|---|---|---|---|---|---|---|")
print(f"| newsboat -x reload (32 threads) | {nb_feeds} | {nb:.0f} | 1.0× | {nb / curl:.3f} | | | |")
print(f"| curl --parallel 64 (download only) | {feeds} | {curl:.0f} | {curl / nb:.1f}× | 1.0 | | {1000 * curl_cpu / feeds:.2f} | |")
rates = {}
for s in shapes:
    c0, c1, c2 = s["cpu"]
    w0, w1, w2 = s["written"]
    for label, run, cpu, written in (("first pass", s["first"], (c1 - c0) / tick, w1 - w0),
                                     ("second pass (304)", s["second"], (c2 - c1) / tick, w2 - w1)):
        r = feeds / run["seconds"]
        rates[(s["shape"], label)] = r
        print(f"| {names.get(s['shape'], s['shape'])}, {label} | {feeds} | {r:.0f} | {r / nb:.1f}× | {r / curl:.2f} | "
              f"{run['lag_ms_p50']} / {run['lag_ms_p99']} / {run['lag_ms_max']} | {1000 * cpu / feeds:.2f} | "
              f"{1000 * written / feeds / 1e6:.2f} |")
print()
for s in shapes:
    print(f"{s['shape']} first pass: {json.dumps(s['first'])}")
    print(f"{s['shape']} second pass: {json.dumps(s['second'])}")
    print(f"{s['shape']} resident memory after both passes (all its processes): {s['rss_kb'] / 1024:.0f} MB")
base = shapes[0]["shape"]
for s in shapes[1:]:
    for label in ("first pass", "second pass (304)"):
        print(f"{s['shape']} / {base}, {label}: {rates[(s['shape'], label)] / rates[(base, label)]:.2f}")
ok = all(s["first"]["events"] == feeds + 1 and s["second"]["events"] == feeds + 1 for s in shapes)
print("every job's event delivered" if ok else "MISSING EVENTS")
PY
