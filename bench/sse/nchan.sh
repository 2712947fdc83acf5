#!/usr/bin/env bash
# The peer of bench/sse/run.sh: the same load against nginx with the nchan module (one worker).
#
#   bench/sse/nchan.sh BUILD_DIR [STREAMS=10000] [BATCHES=10] [FEEDS=30]
#
# Opens STREAMS EventSource subscriptions over BATCHES channels with BUILD_DIR/bench/sse/sse_load,
# publishes FEEDS feedpipe-shaped events plus a final one per channel (nchan_publish.py; SPREAD_MS
# as in run.sh), DELETEs each channel to end its streams, and prints sse_load's line, the worker's
# resident memory per stream and its CPU per delivered event. Installs nginx and
# libnginx-mod-nchan when missing (Debian).
set -euo pipefail
BUILD=${1:?usage: nchan.sh BUILD_DIR [STREAMS] [BATCHES] [FEEDS]}
STREAMS=${2:-10000}
BATCHES=${3:-10}
FEEDS=${4:-30}
EXPECTED=$((FEEDS + 1))
HERE=$(cd "$(dirname "$0")" && pwd)
MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
if [[ ! -f $MODULE ]] || ! command -v nginx >/dev/null; then
  echo "installing nginx libnginx-mod-nchan"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx libnginx-mod-nchan >/dev/null
fi
source "$HERE/measure.sh"
find_sse_load "$BUILD" || exit 1
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 "$HERE/../free_port.py")
mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<CONF
load_module $MODULE;
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections $(( $(ulimit -Hn) - 100 )); multi_accept on; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    location ~ ^/sub/(\w+)$ { nchan_subscriber eventsource; nchan_channel_id \$1; }
    location ~ ^/pub/(\w+)$ { nchan_publisher; nchan_channel_id \$1; }
  }
}
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
MASTER=$!
WORKER=""
for _ in $(seq 100); do
  WORKER=$(pgrep -P "$MASTER" | head -1 || true)
  [[ -n $WORKER ]] && curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.1
done
[[ -n $WORKER ]] || { echo "nginx did not start:"; cat "$WORK/logs/error.log"; exit 1; }

: >"$WORK/paths"
for b in $(seq "$BATCHES"); do echo "/sub/b$b" >>"$WORK/paths"; done

SERVER=$WORKER
open_streams
python3 "$HERE/nchan_publish.py" "$PORT" "$BATCHES" "$FEEDS" "${SPREAD_MS:-0}"
report
