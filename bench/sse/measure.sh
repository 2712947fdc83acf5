# Shared by run.sh and nchan.sh (sourced): runs sseload against a server process and reports.
# open_streams and report expect SSELOAD, SERVER (the PID holding the streams), PORT, WORK (with WORK/paths), STREAMS, PIDS.

# Sets SSELOAD to the built load generator at $1, else compiles ../shared/tools/sseload; fails
# (with a message) when neither exists, so that the benchmark can skip.
find_sseload() {
  SSELOAD=$1
  [[ -x $SSELOAD ]] && return 0
  local src=$HERE/../../../shared/tools/sseload/sseload.c
  if [[ ! -f $src ]]; then
    echo "sseload not available (../shared/tools/sseload missing): skipped"
    return 1
  fi
  SSELOAD=$(mktemp -d)/sseload
  gcc -O2 -o "$SSELOAD" "$src"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }

# Starts sseload and waits until the server holds a socket per stream; sets BASE_RSS, PEAK_RSS,
# OPEN_FDS, SOCKSTAT, CPU0 and LOAD.
open_streams() {
  BASE_RSS=$(rss_kb)
  "$SSELOAD" -p "$PORT" -u "$WORK/paths" -n "$STREAMS" -d 120 -r 5000 >"$WORK/sseload.out" &
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

# Waits for sseload to end and prints its line, memory per stream and CPU per delivered event.
report() {
  wait "$LOAD" || true
  local cpu1 after hz line events
  cpu1=$(cpu_ticks)
  after=$(rss_kb)
  hz=$(getconf CLK_TCK)
  line=$(cat "$WORK/sseload.out")
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
