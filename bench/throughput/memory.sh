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

work=$(mktemp -d /tmp/feedpipe-memory.XXXXXX)
chmod 755 "$work"   # nginx workers run as nobody
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

if [[ -f ../shared/corpus/gen_feeds.py ]]; then
  python3 ../shared/corpus/gen_feeds.py --count "$FEEDS" --items "$ITEMS" --out "$work/feeds" >/dev/null
else
  python3 bench/throughput/gen_feeds.py "$FEEDS" "$ITEMS" "$work/feeds"
fi
chmod -R a+rX "$work/feeds"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  etag on;
  keepalive_requests 100000;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $work/feeds; types { application/rss+xml xml rss rdf atom; } }
}
CONF
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
sleep 0.5

FP_PORT=$(port)
"$FEEDPIPE_BIN" standalone --http "127.0.0.1:$FP_PORT" --db "$work/feedpipe.db" --allow-private-networks \
  --max-batch-feeds "$FEEDS" --log-level warn ${FEEDPIPE_ARGS:-} > "$work/feedpipe.log" 2>&1 &
fp=$!
pids+=($fp)
for _ in $(seq 1 300); do curl -sf "127.0.0.1:$FP_PORT/readyz" >/dev/null && break; sleep 0.1; done
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
