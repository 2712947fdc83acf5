# Shared by the throughput benchmarks (sourced; serve_feeds and start_feedpipe expect $work, $pids, $FEEDS, $ITEMS, $FEEDPIPE_BIN).

# A world-readable work folder /tmp/feedpipe-NAME.* (nginx workers run as nobody) in $work, and
# a cleanup on exit that ends the processes in $pids and removes it.
make_workdir() {
  work=$(mktemp -d "/tmp/feedpipe-$1.XXXXXX")
  chmod 755 "$work"
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Generates $FEEDS feeds of $ITEMS items into $work/feeds and serves them from nginx on
# 127.0.0.1:$NGINX_PORT (etag on, one worker; the folder is made world-readable for its workers).
serve_feeds() {
  if [[ -f ../shared/corpus/gen_feeds.py ]]; then
    python3 ../shared/corpus/gen_feeds.py --count "$FEEDS" --items "$ITEMS" --out "$work/feeds" >/dev/null
  else
    echo "(../shared/corpus not found: using bench/throughput/gen_feeds.py)"
    python3 bench/throughput/gen_feeds.py "$FEEDS" "$ITEMS" "$work/feeds"
  fi
  chmod -R a+rX "$work/feeds"
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
}

# Starts feedpipe standalone on 127.0.0.1:$FP_PORT (PID $fp; FEEDPIPE_ARGS adds flags) and waits
# until /readyz answers.
start_feedpipe() {
  FP_PORT=$(port)
  "$FEEDPIPE_BIN" standalone --http "127.0.0.1:$FP_PORT" --db "$work/feedpipe.db" --allow-private-networks \
    --max-batch-feeds "$FEEDS" --log-level warn ${FEEDPIPE_ARGS:-} > "$work/feedpipe.log" 2>&1 &
  fp=$!
  pids+=($fp)
  for _ in $(seq 1 300); do curl -sf "127.0.0.1:$FP_PORT/readyz" >/dev/null && break; sleep 0.1; done
}
