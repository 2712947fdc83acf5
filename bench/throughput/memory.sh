#!/usr/bin/env bash
# Bounded memory: feedpipe standalone refreshes BATCHES batches of FEEDS feeds each (distinct feed
# URLs in every batch, so every batch adds feeds, items, jobs and events) and its resident memory
# is read from /proc after each batch. Passes when the RSS after the last batch is within 20% of
# the RSS after the first.
#   bench/throughput/memory.sh [BATCHES=20] [FEEDS=2000]
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCHES=${1:-20}
FEEDS=${2:-2000}
ITEMS=10
for p in nginx curl python3; do
  command -v "$p" >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx curl python3 >/dev/null; break; }
done
FEEDPIPE_BIN=${FEEDPIPE_BIN:-build/feedpipe}
[[ -x "$FEEDPIPE_BIN" ]] || scripts/build.sh

source bench/throughput/lib.sh
make_workdir memory

serve_feeds

start_feedpipe
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$fp/status"; }

echo "| batch | seconds | events | RSS (MB) | SQLite files open |"
echo "|---|---|---|---|---|"
for b in $(seq 1 "$BATCHES"); do
  # A query string makes every batch's feeds new to feedpipe; nginx ignores it.
  ls "$work/feeds" | sed "s|^\(.*\)$|http://127.0.0.1:$NGINX_PORT/\1?batch=$b|" > "$work/urls.txt"
  result=$(python3 bench/throughput/watch_batch.py "$FP_PORT" "$work/urls.txt")
  rss=$(rss_kb)
  dbs=$(ls -l "/proc/$fp/fd" | grep -c 'feedpipe.db$' || true)
  ((b == 1)) && first_rss=$rss
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f'| $b | {r[\"seconds\"]:.2f} | {r[\"events\"]} | {$rss/1024:.0f} | $dbs |')" "$result"
done
awk '/^Anonymous/ {a = $2} /^Pss_File/ {f = $2} /^Pss_Shmem/ {m = $2} END {
  printf "at the end: anonymous %.0f MB, file-backed %.0f MB, shared memory %.0f MB\n", a / 1024, f / 1024, m / 1024 }' "/proc/$fp/smaps_rollup"
python3 - "$first_rss" "$rss" "$BATCHES" "$FEEDS" <<'PY'
import sys
first, last, batches, feeds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
growth = (last - first) / first * 100
print(f"\nRSS after batch 1: {first / 1024:.0f} MB; after batch {batches} ({batches * feeds} feeds): "
      f"{last / 1024:.0f} MB; growth {growth:+.1f}% ({'within' if growth <= 20 else 'OVER'} the 20% bound)")
sys.exit(0 if growth <= 20 else 1)
PY
