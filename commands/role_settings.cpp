#include "commands/role_settings.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/logging.h"
#include "common/model.h"

namespace feedpipe::commands {

void add_common_settings(Settings& s, const std::string& default_db) {
  s.add("db", default_db,
        default_db.empty() ? "SQLite database file (shared by every role of one host); none when empty"
                           : "SQLite database file (shared by every role of one host)")
      .add("brokers", "", "Kafka bootstrap servers host:port[,…]")
      .add("kafka-partitions", "12", "partitions of the topics feedpipe creates")
      .add("kafka-linger-ms", "5", "job producer batching delay (linger.ms)")
      .add("kafka-events-linger-ms", "0", "event producer batching delay (linger.ms); events travel with one request in flight, so they batch under load anyway")
      .add("kafka-fetch-wait-ms", "10", "consumer fetch.wait.max.ms (low: librdkafka's 500 caps throughput)")
      .add("kafka-session-timeout-ms", "6000", "consumer group session timeout")
      .add("kafka-compression", "lz4", "compression of produced messages: none, gzip, snappy, lz4 or zstd")
      .add("kafka-max-message-bytes", std::to_string(kMaxMessageBytes),
           "(expert) producers' message.max.bytes: a job outcome larger than this fails its job; "
           "keep it at most the topics' max.message.bytes")
      .add("kafka-config", "", "file of librdkafka properties (key=value lines) for every Kafka client: TLS, SASL; explicit --kafka-* flags win over it")
      .add("sqlite-memory-mb", "0", "soft limit on the memory of all SQLite connections together (0: none; each connection's cache is bounded on its own, and SQLite skips the global lock its memory statistics take at every allocation)")
      .add("memory-trim-ms", "1000", "how often freed heap memory is handed back to the OS (0: never)")
      .add("malloc-arenas", "2", "with glibc's malloc only (a -DFEEDPIPE_MALLOC=glibc build; the default links jemalloc, 2 arenas, MALLOC_CONF=narenas:N to change): arenas the threads share (0: glibc's default, 8 per core; more arenas, more memory kept)")
      .add("log-level", "info", "trace, debug, info, warn or error")
      .add("log-format", "text", "text or json");
}

void add_http_settings(Settings& s, const std::string& default_listen) {
  s.add("http", default_listen, "HOST:PORT to serve HTTP on")
      .add("http-threads", "8", "worker threads of the cpp-httplib API server, each with its own SQLite connection (SSE streams are served by the event-loop front)")
      .add("http-max-body-bytes", std::to_string(16 << 20), "largest request body accepted");
}

void add_producer_settings(Settings& s) {
  s.add("max-batch-feeds", "10000", "most feeds in one batch")
      .add("outbox-sweep-ms", "5000", "how often jobs Kafka has not acknowledged are published again")
      .add("job-lease-ms", "300000",
           "a job running longer than this (its consumer vanished) is published again; keep it "
           "above the consumers' job deadline")
      .add("api-tokens", "", "comma-separated bearer tokens; when any is set (here or in --api-tokens-file), POST /v1/batches needs Authorization: Bearer <token>")
      .add("api-tokens-file", "", "file of bearer tokens, one per line (# comments, blank lines ignored)")
      .add("submit-rate-limit", "0", "batches per minute per token (per client address without tokens); more get 429 (0: no limit)");
}

void add_consumer_settings(Settings& s) {
  s.add("fetch-max-in-flight", "256", "concurrent fetches per consumer")
      .add("fetch-connect-timeout-ms", "5000", "connect timeout")
      .add("fetch-timeout-ms", "30000", "whole-transfer timeout of one attempt")
      .add("fetch-low-speed-bytes", "1024", "abort a transfer slower than this many bytes/s …")
      .add("fetch-low-speed-seconds", "10", "… for this many seconds (no answer at all in this window is retried; a body that began and trickles is not)")
      .add("fetch-max-body-bytes", std::to_string(10 << 20), "largest feed body, decompressed")
      .add("fetch-max-redirects", "5", "redirects followed")
      .add("fetch-max-host-connections", "32", "transfers, so connections, to one host at once (0: no limit); the others wait without taking a slot of --fetch-max-in-flight")
      .add("fetch-attempts", "3", "attempts for transient failures (connect errors, resets, timeouts, no answer within the low-speed window, 5xx, 429)")
      .add("fetch-retry-delay-ms", "500", "base of the exponential retry backoff")
      .add("job-deadline-ms", "60000", "a job never runs longer than this, retries included")
      .add("user-agent", "feedpipe/0.1", "User-Agent of feed requests")
      .add("consumer-max-backlog", "1024", "jobs a consumer works on at once (fetching or being recorded); more wait")
      .add("consumer-max-read-ahead", "16384", "jobs read from Kafka that wait for room in the backlog; at this many the consumer pauses its partitions (it keeps serving its group)")
      .add("write-group", "512", "job outcomes per SQLite transaction")
      .add("job-running-after-ms", "250", "a job taken this long without an outcome is shown as running; one done sooner goes from queued straight to its outcome, a row update fewer");
  add_outbound_address_settings(s);
}

void add_outbound_address_settings(Settings& s) {
  s.add_switch("allow-private-networks",
               "allow fetching feeds and calling callbacks at every loopback and private address (tests; for an "
               "intranet prefer --allow-networks)")
      .add("allow-networks", "",
           "CIDR blocks or addresses feeds may be fetched from and callbacks sent to although the SSRF guard "
           "refuses them, comma-separated, e.g. 10.1.0.0/16,fd00:1::/64 (loopback only when listed)");
}

void add_callback_settings(Settings& s) {
  s.add("callback-secret", "",
        "when set, each callback POST carries Feedpipe-Signature: t=UNIX,v1=hex HMAC-SHA256(secret, t + \".\" + body)")
      .add("callback-retry-min-ms", "1000", "a failed callback is first tried again after this long …")
      .add("callback-retry-max-ms", "3600000",
           "… then after a delay drawn at random up to twice the previous cap (full jitter), at most this long")
      .add("callback-max-age", "24h",
           "a callback not delivered this long after its batch completed is given up (status failed); "
           "a duration: 90 (seconds), 30m, 12h, 1d")
      .add("callback-connect-timeout-ms", "5000", "connect timeout of a callback POST")
      .add("callback-timeout-ms", "10000", "whole-attempt timeout of a callback POST (then it is retried)")
      .add("callback-low-speed-bytes", "1024", "abort a callback answer slower than this many bytes/s …")
      .add("callback-low-speed-seconds", "10", "… for this many seconds (then it is retried)")
      .add("callback-max-response-bytes", "65536", "a receiver's answer body is read up to this many bytes, then dropped")
      .add("callback-max-in-flight", "16", "callback POSTs one process sends at once")
      .add("callback-poll-ms", "500", "how often the SQLite queue is read for due callbacks")
      .add("callback-claim-lease-ms", "60000",
           "a process sending a callback holds it this long (keep above --callback-timeout-ms); if it dies, "
           "another process (or this one restarted) sends it after that");
}

void add_broadcaster_settings(Settings& s) {
  s.add("heartbeat-ms", "15000", "SSE ': ping' interval")
      .add("sweep-ms", "1000", "how often watched, uncompleted batches are re-read from SQLite (or the API)")
      .add("sse-retry-ms", "3000", "SSE retry: hint")
      .add("max-streams", "20000", "open SSE streams per process; more get 503 with Retry-After")
      .add("stream-buffer-bytes", std::to_string(256 * 1024),
           "output a stream may lag behind (beyond the kernel's buffer) before it is dropped")
      .add("stream-loops", "1", "event loops serving the SSE streams, on one port (SO_REUSEPORT); the stream caps are shared between them")
      .add("max-stream-batches", "100", "batches one GET /v1/events stream may watch (batch=…&batch=…); more get 400 too_many_batches")
      .add("max-streams-per-ip", "20000", "open SSE streams per client address; more get 429 with Retry-After (0: no cap)")
      .add("stream-rate-limit", "0", "SSE stream opens per minute per client address; more get 429 (0: no limit)");
}

void add_recorder_settings(Settings& s) {
  s.add("recorder-max-backlog", "1024", "outcomes a recorder works on at once (being recorded); more wait")
      .add("recorder-max-read-ahead", "16384", "outcomes read from Kafka that wait for room in the backlog; at this many the recorder pauses its partitions (it keeps serving its group)")
      .add("write-group", "512", "job outcomes per SQLite transaction");
}

void add_broadcaster_api_settings(Settings& s) {
  s.add("api", "",
        "instead of --db: a producer's URL (http://host:port); batch history and gaps are read from its JSON "
        "events page, so the broadcaster may run on a host without the database")
      .add("api-connect-timeout-ms", "1000", "--api: connect timeout of a page read")
      .add("api-timeout-ms", "3000", "--api: read timeout of a page read (a slow or down API is retried with backoff)");
}

void add_access_settings(Settings& s) {
  s.add("stream-token-secret", "", "when set, GET /v1/batches/{id}/events needs ?token=HMAC-SHA256(secret, id) in hex (answered with the batch), and GET /v1/events one token= per batch=; give the producer and broadcasters the same secret")
      .add("cors-origins", "", "origins allowed to call the API and open streams from a browser (comma list, or *); off when empty")
      .add("trusted-proxies", "127.0.0.1,::1", "proxies whose X-Forwarded-For names the client (for per-client limits): addresses or CIDR blocks, comma-separated (127.0.0.1,172.28.0.0/16); the front's own hop to the API is always trusted")
      .add("rate-limit-max-clients", "100000", "clients each rate limiter remembers (idle ones are forgotten after a minute)");
}

void add_retention_settings(Settings& s) {
  s.add("retention-age", "7d",
        "completed batches older than this are deleted with their jobs and events (0: keep forever); "
        "a duration: 90 (seconds), 30m, 12h, 7d")
      .add("items-per-feed", "500", "items kept per feed, newest by published date else first seen (0: all)")
      .add("retention-interval", "1h", "how often the pruner runs (also once 10 s after start)")
      .add("retention-chunk-rows", "5000", "rows deleted per pruner transaction, so writers never wait long");
}

void add_shutdown_settings(Settings& s, const std::string& drain, const std::string& grace) {
  s.add("drain-timeout-ms", "10000", drain).add("shutdown-grace-ms", "1000", grace);
}

ShutdownLimits shutdown_limits(const Settings& s) {
  long drain = s.integer("drain-timeout-ms"), grace = s.integer("shutdown-grace-ms");
  if (drain < 0 || grace < 0) throw ConfigError("--drain-timeout-ms and --shutdown-grace-ms must be 0 or more");
  return {std::chrono::milliseconds(drain), std::chrono::milliseconds(grace)};
}

bool parse_settings(Settings& s, int argc, char** argv) {
  if (!s.parse(argc, argv)) return false;
  setup_logging(s.str("log-level"), s.str("log-format"));
  return true;
}

KafkaSettings kafka_settings(const Settings& s) {
  KafkaSettings k;
  k.brokers = s.str("brokers");
  k.partitions = static_cast<int>(s.integer("kafka-partitions"));
  k.linger_ms = static_cast<int>(s.integer("kafka-linger-ms"));
  k.events_linger_ms = static_cast<int>(s.integer("kafka-events-linger-ms"));
  k.fetch_wait_max_ms = static_cast<int>(s.integer("kafka-fetch-wait-ms"));
  k.session_timeout_ms = static_cast<int>(s.integer("kafka-session-timeout-ms"));
  k.compression = s.str("kafka-compression");
  k.max_message_bytes = static_cast<int>(s.integer("kafka-max-message-bytes"));
  if (k.max_message_bytes < 1000 || k.max_message_bytes > 1000000000)
    throw ConfigError("--kafka-max-message-bytes must be between 1000 and 1000000000");
  k.config_file = s.str("kafka-config");
  if (!k.config_file.empty()) k.file_properties = read_kafka_config(k.config_file);
  check_kafka_config(k);
  // The librdkafka properties each --kafka-* flag sets: given explicitly, they win over the file.
  const std::pair<const char*, std::vector<std::string>> flags[] = {
      {"kafka-linger-ms", {"linger.ms"}},
      {"kafka-fetch-wait-ms", {"fetch.wait.max.ms"}},
      {"kafka-session-timeout-ms", {"session.timeout.ms", "heartbeat.interval.ms"}},
      {"kafka-compression", {"compression.type"}},
      {"kafka-max-message-bytes", {"message.max.bytes"}},
  };
  for (const auto& [flag, properties] : flags)
    if (s.given(flag)) k.explicit_properties.insert(properties.begin(), properties.end());
  if (!s.given("brokers"))
    for (const auto& p : k.file_properties)
      if (p.name == "bootstrap.servers" || p.name == "metadata.broker.list") k.brokers = p.value;
  return k;
}

StreamServerSettings stream_server_settings(const Settings& s, const BroadcasterSettings& b) {
  StreamServerSettings f;
  f.max_streams = b.max_streams;
  f.max_stream_batches = static_cast<size_t>(std::max(1L, s.integer("max-stream-batches")));
  f.stream_buffer_bytes = b.stream_buffer_bytes;
  f.max_body_bytes = static_cast<size_t>(s.integer("http-max-body-bytes"));
  f.heartbeat = b.heartbeat;
  f.async_first_read = !b.api_url.empty();  // an API may be slow: its reads stay off the stream loop
  f.retry_ms = b.retry_ms;
  f.stream_token_secret = b.stream_token_secret;
  f.stream_rate_per_minute = s.integer("stream-rate-limit");
  f.max_streams_per_ip = static_cast<size_t>(s.integer("max-streams-per-ip"));
  f.rate_limit_max_clients = static_cast<size_t>(s.integer("rate-limit-max-clients"));
  f.cors = cors_policy(s);
  f.trusted_proxies = TrustedProxies::parse(s.str("trusted-proxies"));
  return f;
}

void check_access_settings(const Settings& s, bool api_tokens) {
  if (api_tokens) ApiTokens::load(s.str("api-tokens-file"), s.str("api-tokens"));
  cors_policy(s);
  TrustedProxies::parse(s.str("trusted-proxies"));
}

callbacks::CallbackSettings callback_settings(const Settings& s) {
  callbacks::CallbackSettings c;
  c.db_path = s.str("db");
  c.secret = s.str("callback-secret");
  c.retry.min = std::chrono::milliseconds(s.integer("callback-retry-min-ms"));
  c.retry.max = std::chrono::milliseconds(s.integer("callback-retry-max-ms"));
  c.retry.max_age = s.duration("callback-max-age");
  if (c.retry.min.count() < 1) throw ConfigError("--callback-retry-min-ms must be at least 1");
  if (c.retry.max < c.retry.min) throw ConfigError("--callback-retry-max-ms must be at least --callback-retry-min-ms");
  if (c.retry.max_age.count() < 1) throw ConfigError("--callback-max-age must be more than 0");
  c.connect_timeout_ms = s.integer("callback-connect-timeout-ms");
  c.timeout_ms = s.integer("callback-timeout-ms");
  if (c.connect_timeout_ms < 1 || c.timeout_ms < 1)
    throw ConfigError("--callback-connect-timeout-ms and --callback-timeout-ms must be at least 1");
  c.low_speed_bytes_per_s = s.integer("callback-low-speed-bytes");
  c.low_speed_window_s = s.integer("callback-low-speed-seconds");
  long max_response = s.integer("callback-max-response-bytes"), in_flight = s.integer("callback-max-in-flight");
  if (max_response < 0) throw ConfigError("--callback-max-response-bytes must be 0 or more");
  if (in_flight < 1) throw ConfigError("--callback-max-in-flight must be at least 1");
  c.max_response_bytes = static_cast<size_t>(max_response);
  c.max_in_flight = static_cast<size_t>(in_flight);
  c.poll_interval = std::chrono::milliseconds(s.integer("callback-poll-ms"));
  if (c.poll_interval.count() < 1) throw ConfigError("--callback-poll-ms must be at least 1");
  c.claim_lease = std::chrono::milliseconds(s.integer("callback-claim-lease-ms"));
  if (c.claim_lease.count() <= c.timeout_ms)
    throw ConfigError("--callback-claim-lease-ms must be more than --callback-timeout-ms, or a slow attempt "
                      "could be sent twice at once");
  c.allow_private_networks = s.on("allow-private-networks");
  c.allow_networks = allowed_networks(s);
  return c;
}

IpNetworks allowed_networks(const Settings& s) { return IpNetworks::parse(s.str("allow-networks"), "allow-networks"); }

CorsPolicy cors_policy(const Settings& s) { return CorsPolicy::parse(s.str("cors-origins")); }

HttpServerSettings http_settings(const Settings& s) {
  HttpServerSettings h;
  h.threads = static_cast<int>(s.integer("http-threads"));
  h.max_body_bytes = static_cast<size_t>(s.integer("http-max-body-bytes"));
  return h;
}

producer::ProducerSettings producer_settings(const Settings& s, const KafkaSettings& kafka) {
  producer::ProducerSettings p;
  p.db_path = s.str("db");
  p.kafka = kafka;
  p.max_batch_feeds = static_cast<size_t>(s.integer("max-batch-feeds"));
  p.outbox_sweep_interval = std::chrono::milliseconds(s.integer("outbox-sweep-ms"));
  p.job_lease = std::chrono::milliseconds(s.integer("job-lease-ms"));
  p.api_tokens = ApiTokens::load(s.str("api-tokens-file"), s.str("api-tokens"));
  p.submit_rate_per_minute = s.integer("submit-rate-limit");
  p.rate_limit_max_clients = static_cast<size_t>(s.integer("rate-limit-max-clients"));
  p.stream_token_secret = s.str("stream-token-secret");
  p.trusted_proxies = TrustedProxies::parse(s.str("trusted-proxies"));
  p.flush_timeout = shutdown_limits(s).drain;
  if (p.api_tokens.enabled()) spdlog::info("POST /v1/batches needs a bearer token ({} configured)", p.api_tokens.size());
  return p;
}

consumer::ConsumerSettings consumer_settings(const Settings& s, const KafkaSettings& kafka) {
  consumer::ConsumerSettings c;
  c.db_path = s.str("db");
  c.kafka = kafka;
  auto& f = c.fetch;
  f.max_in_flight = static_cast<int>(s.integer("fetch-max-in-flight"));
  f.connect_timeout_ms = s.integer("fetch-connect-timeout-ms");
  f.transfer_timeout_ms = s.integer("fetch-timeout-ms");
  f.low_speed_bytes_per_s = s.integer("fetch-low-speed-bytes");
  f.low_speed_window_s = s.integer("fetch-low-speed-seconds");
  f.max_body_bytes = static_cast<size_t>(s.integer("fetch-max-body-bytes"));
  f.max_redirects = static_cast<int>(s.integer("fetch-max-redirects"));
  f.max_host_connections = static_cast<int>(s.integer("fetch-max-host-connections"));
  f.max_attempts = static_cast<int>(s.integer("fetch-attempts"));
  f.retry_base_delay_ms = s.integer("fetch-retry-delay-ms");
  f.job_deadline_ms = s.integer("job-deadline-ms");
  f.user_agent = s.str("user-agent");
  f.allow_private_networks = s.on("allow-private-networks");
  f.allow_networks = allowed_networks(s);
  c.max_backlog = static_cast<size_t>(s.integer("consumer-max-backlog"));
  c.max_read_ahead = std::max<size_t>(1, static_cast<size_t>(s.integer("consumer-max-read-ahead")));
  c.max_write_group = static_cast<size_t>(s.integer("write-group"));
  c.mark_running_after = std::chrono::milliseconds(std::max(0L, s.integer("job-running-after-ms")));
  c.drain_timeout = shutdown_limits(s).drain;
  c.kafka_close_timeout = shutdown_limits(s).grace;
  return c;
}

consumer::RecorderSettings recorder_settings(const Settings& s, const KafkaSettings& kafka) {
  consumer::RecorderSettings r;
  r.db_path = s.str("db");
  if (r.db_path.empty()) throw ConfigError("the recorder needs --db");
  r.kafka = kafka;
  r.max_backlog = static_cast<size_t>(std::max(1L, s.integer("recorder-max-backlog")));
  r.max_read_ahead = static_cast<size_t>(std::max(1L, s.integer("recorder-max-read-ahead")));
  r.max_write_group = static_cast<size_t>(std::max(1L, s.integer("write-group")));
  r.drain_timeout = shutdown_limits(s).drain;
  r.kafka_close_timeout = shutdown_limits(s).grace;
  return r;
}

RetentionSettings retention_settings(const Settings& s) {
  RetentionSettings r;
  r.batch_age = s.duration("retention-age");
  r.interval = s.duration("retention-interval");
  if (r.interval.count() <= 0) throw ConfigError("--retention-interval must be more than 0");
  long items = s.integer("items-per-feed"), chunk = s.integer("retention-chunk-rows");
  if (items < 0) throw ConfigError("--items-per-feed must be 0 (keep all) or more");
  if (chunk < 1) throw ConfigError("--retention-chunk-rows must be at least 1");
  r.items_per_feed = static_cast<size_t>(items);
  r.chunk = static_cast<size_t>(chunk);
  return r;
}

BroadcasterSettings broadcaster_settings(const Settings& s, const KafkaSettings& kafka) {
  BroadcasterSettings b;
  b.db_path = s.str("db");
  b.kafka = kafka;
  b.heartbeat = std::chrono::milliseconds(s.integer("heartbeat-ms"));
  b.sweep_interval = std::chrono::milliseconds(s.integer("sweep-ms"));
  b.retry_ms = static_cast<int>(s.integer("sse-retry-ms"));
  b.max_streams = static_cast<size_t>(s.integer("max-streams"));
  b.stream_buffer_bytes = static_cast<size_t>(s.integer("stream-buffer-bytes"));
  b.stream_token_secret = s.str("stream-token-secret");
  b.reader_close_timeout = shutdown_limits(s).drain;
  return b;
}

BroadcasterSettings broadcaster_api_settings(const Settings& s, const KafkaSettings& kafka) {
  BroadcasterSettings b = broadcaster_settings(s, kafka);
  b.api_url = s.str("api");
  b.api_connect_timeout = std::chrono::milliseconds(s.integer("api-connect-timeout-ms"));
  b.api_timeout = std::chrono::milliseconds(s.integer("api-timeout-ms"));
  if (b.api_connect_timeout.count() < 1 || b.api_timeout.count() < 1)
    throw ConfigError("--api-connect-timeout-ms and --api-timeout-ms must be at least 1");
  Broadcaster::check_source(b);
  return b;
}

}  // namespace feedpipe::commands
