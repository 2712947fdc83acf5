# Shared by the throughput benchmarks (sourced; serve_feeds and start_feedpipe expect $work, $pids, $FEEDS, $ITEMS, $FEEDPIPE_BIN).

# A world-readable work folder /tmp/feedpipe-NAME.* (nginx workers run as nobody) in $work, and
# a cleanup on exit that ends the processes in $pids and removes it.
make_workdir() {
  work=$(mktemp -d "/tmp/feedpipe-$1.XXXXXX")
  chmod 755 "$work"
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP_WORK:-} ]] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
}

port() { python3 "$(dirname "${BASH_SOURCE[0]}")/../free_port.py"; }

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

# wait_ready PORT [LOG]: until 127.0.0.1:PORT/readyz answers 200 (30 s); else says why and fails.
wait_ready() {
  for _ in $(seq 1 300); do curl -sf "127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.1; done
  echo "nothing ready on 127.0.0.1:$1 after 30 s: $(curl -s "127.0.0.1:$1/readyz" || echo "no answer")" >&2
  [[ -n ${2:-} && -f $2 ]] && tail -n 20 "$2" >&2
  return 1
}

# Starts feedpipe standalone on 127.0.0.1:$FP_PORT (PID $fp; FEEDPIPE_ARGS adds flags) and waits
# until /readyz answers. $FP_STREAM_PORT serves the streams (the same port); $fp_pids lists the
# processes whose CPU counts.
start_feedpipe() {
  FP_PORT=$(port)
  FP_STREAM_PORT=$FP_PORT
  "$FEEDPIPE_BIN" standalone --http "127.0.0.1:$FP_PORT" --db "$work/feedpipe.db" --allow-private-networks \
    --max-batch-feeds "$FEEDS" --log-level warn ${FEEDPIPE_ARGS:-} > "$work/feedpipe.log" 2>&1 &
  fp=$!
  pids+=($fp)
  fp_pids=($fp)
  writer_ports=("$FP_PORT")
  wait_ready "$FP_PORT" "$work/feedpipe.log"
}

# The shapes operators run, each role a process of its own, all on this machine: kafka-mock,
# producer --db on $FP_PORT, CONSUMERS (default: one per core, as standalone) consumers and a
# broadcaster on $FP_STREAM_PORT, on $work/SHAPE.db (a database of its own, so every shape starts cold).
#   start_roles        one host: consumer --db, broadcaster --db;
#   start_roles many   many hosts: recorder --db, consumers without a database, broadcaster --api.
# Sets fp_pids to every one of them, writer_ports to the HTTP ports of those that write outcomes.
start_roles() {
  local brokers common i cport shape=${1:-one}
  "$FEEDPIPE_BIN" kafka-mock --log-level warn > "$work/brokers" 2> "$work/kafka-mock.log" &
  pids+=($!)
  fp_pids=($!)
  for _ in $(seq 1 300); do [[ -s $work/brokers ]] && break; sleep 0.1; done
  brokers=$(head -1 "$work/brokers")
  if [[ -z $brokers ]]; then
    echo "kafka-mock printed no address in 30 s:" >&2
    tail -n 20 "$work/kafka-mock.log" >&2
    return 1
  fi
  "$FEEDPIPE_BIN" migrate --db "$work/$shape.db" > /dev/null 2>&1
  common=(--brokers "$brokers" --log-level warn)
  FP_PORT=$(port)
  FP_STREAM_PORT=$(port)
  "$FEEDPIPE_BIN" producer --http "127.0.0.1:$FP_PORT" --max-batch-feeds "$FEEDS" --db "$work/$shape.db" "${common[@]}" > "$work/producer.log" 2>&1 &
  pids+=($!)
  fp_pids+=($!)
  local fetch_db=(--db "$work/$shape.db") edge_source=(--db "$work/$shape.db")
  if [[ $shape == many ]]; then
    cport=$(port)
    "$FEEDPIPE_BIN" recorder --http "127.0.0.1:$cport" --db "$work/$shape.db" "${common[@]}" > "$work/recorder.log" 2>&1 &
    pids+=($!)
    fp_pids+=($!)
    wait_ready "$cport" "$work/recorder.log"
    writer_ports=("$cport")
    fetch_db=()
    edge_source=(--api "http://127.0.0.1:$FP_PORT")
  fi
  # The consumers start together, as compose starts replicas: they join the group in one
  # rebalance. (One that joins later costs two cooperative rounds, and the embedded broker holds
  # each round open for the session timeout less a second.)
  local cports=()
  for i in $(seq 1 "${CONSUMERS:-$(nproc)}"); do
    cports+=($(port))
    "$FEEDPIPE_BIN" consumer --http "127.0.0.1:${cports[-1]}" --allow-private-networks "${common[@]}" \
      ${fetch_db[@]+"${fetch_db[@]}"} ${FEEDPIPE_ARGS:-} \
      > "$work/consumer$i.log" 2>&1 &
    pids+=($!)
    fp_pids+=($!)
  done
  for i in "${!cports[@]}"; do wait_ready "${cports[i]}" "$work/consumer$((i + 1)).log"; done
  [[ $shape == many ]] || writer_ports=("${cports[@]}")
  "$FEEDPIPE_BIN" broadcaster --http "127.0.0.1:$FP_STREAM_PORT" "${common[@]}" "${edge_source[@]}" \
    > "$work/broadcaster.log" 2>&1 &
  pids+=($!)
  fp_pids+=($!)
  wait_ready "$FP_PORT" "$work/producer.log"
  wait_ready "$FP_STREAM_PORT" "$work/broadcaster.log"
}

# Ends the processes of start_feedpipe or start_roles (the broker last).
stop_feedpipe() {
  local i
  for ((i = ${#fp_pids[@]} - 1; i >= 0; i--)); do kill "${fp_pids[i]}" 2>/dev/null || true; done
  for ((i = ${#fp_pids[@]} - 1; i >= 0; i--)); do wait "${fp_pids[i]}" 2>/dev/null || true; done
}

# CPU ticks (user + system) of every process in fp_pids, and their resident memory in KB.
cpu_ticks() { local p t=0; for p in "${fp_pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
# CPU ticks per thread name over every process of the shape, one "name ticks" line each.
thread_ticks() {
  local p
  for p in "${fp_pids[@]}"; do
    for t in /proc/"$p"/task/*; do
      [[ -r $t/stat ]] && echo "$(cat "$t/comm" 2>/dev/null | tr ' ' '_') $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"
    done
  done | awk '{a[$1] += $2} END {for (k in a) printf "%s:%d ", k, a[k]}'
}
# Bytes the shape's processes caused to be written to storage (SQLite's WAL and checkpoints).
written_bytes() { local p t=0; for p in "${fp_pids[@]}"; do t=$((t + $(awk '/^write_bytes/ {print $2}' "/proc/$p/io"))); done; echo "$t"; }
rss_total_kb() { local p t=0; for p in "${fp_pids[@]}"; do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
