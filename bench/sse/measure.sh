# Shared by run.sh and nchan.sh (sourced): runs sse_load against a server process and reports.
# open_streams and report expect SSE_LOAD, SERVER (the PID holding the streams), PORT, WORK (with
# WORK/paths), STREAMS, EXPECTED (events each stream must receive) and PIDS.

# Sets SSE_LOAD to the load generator built in BUILD_DIR ($1); fails with a message when it is not built.
find_sse_load() {
  SSE_LOAD=$1/bench/sse/sse_load
  [[ -x $SSE_LOAD ]] && return 0
  echo "$SSE_LOAD not found: build the project first (scripts/build.sh)" >&2
  return 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }

# Starts sse_load and waits until the server holds a socket per stream; sets BASE_RSS, PEAK_RSS,
# OPEN_FDS, SOCKSTAT, CPU0 and LOAD.
open_streams() {
  BASE_RSS=$(rss_kb)
  "$SSE_LOAD" -p "$PORT" -u "$WORK/paths" -n "$STREAMS" -e "$EXPECTED" -d 120 -r 5000 >"$WORK/sse_load.out" &
  LOAD=$!
  PIDS+=($LOAD)
  for _ in $(seq 300); do
    fds=$(ls "/proc/$SERVER/fd" | wc -l)
    ((fds >= STREAMS)) && break
    sleep 0.1
  done
  sleep 1
  PEAK_RSS=$(rss_kb)
  SOCKSTAT=$(grep '^TCP:' /proc/net/sockstat)  # kernel TCP memory (pages), both ends of every stream
  OPEN_FDS=$(ls "/proc/$SERVER/fd" | wc -l)
  CPU0=$(cpu_ticks)
}

# Waits for sse_load to end and prints its line, memory per stream and CPU per delivered event.
report() {
  wait "$LOAD" || true
  local cpu1 after hz line events
  cpu1=$(cpu_ticks)
  after=$(rss_kb)
  hz=$(getconf CLK_TCK)
  line=$(cat "$WORK/sse_load.out")
  events=$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$line")
  echo "$line"
  echo "kernel at peak: $SOCKSTAT"
  awk -v base="$BASE_RSS" -v peak="$PEAK_RSS" -v n="$STREAMS" -v fds="$OPEN_FDS" -v after="$after" \
    -v c0="$CPU0" -v c1="$cpu1" -v hz="$hz" -v ev="${events:-0}" 'BEGIN {
    printf "server: open_fds=%d rss_base_kb=%d rss_streams_kb=%d rss_after_kb=%d kb_per_stream_total=%.1f kb_per_stream_delta=%.1f\n",
      fds, base, peak, after, peak / n, (peak - base) / n
    if (ev > 0) printf "server cpu during delivery: %.2f s, %.1f us per delivered event\n", (c1 - c0) / hz, (c1 - c0) / hz * 1e6 / ev
  }'
}
