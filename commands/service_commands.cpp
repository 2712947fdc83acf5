// The long-running commands: standalone (every role in one process) and one command per role.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "broadcaster/delivery_metrics.h"
#include "commands/commands.h"
#include "commands/role_settings.h"
#include "commands/signals.h"
#include "common/memory_trimmer.h"
#include "common/migrations.h"
#include "consumer/callbacks/callback_sender.h"
#include "producer/web_routes.h"

namespace feedpipe::commands {
namespace {

// The memory policy of every service: capped malloc arenas, SQLite's soft heap limit, freed
// memory handed back periodically (by the returned trimmer, while it lives).
MemoryTrimmer memory_policy(const Settings& s) {
  set_malloc_arenas(s.integer("malloc-arenas"));
  set_sqlite_memory_limit(s.integer("sqlite-memory-mb") << 20);
  return MemoryTrimmer(std::chrono::milliseconds(s.integer("memory-trim-ms")));
}

void migrate_database(const std::string& path) {
  Database db(path);
  apply_migrations(db);
}

// Serves `server` on the --http address until a shutdown signal; `before_stop` runs first
// (it ends open streams, which would otherwise hold the server's threads).
void serve_until_signal(httplib::Server& server, const Settings& s, const std::string& role,
                        ShutdownSignal& signal, const std::function<void()>& before_stop) {
  auto [host, port] = parse_host_port(s.str("http"), "http");
  int bound = bind_server(server, host, port);
  std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  spdlog::info("feedpipe {} listening on http://{}:{}", role, shown_host, bound);
  signal.set_action([&] {
    if (before_stop) before_stop();
    server.stop();
  });
  if (!signal.received()) server.listen_after_bind();  // a signal during start-up ran no action
  signal.set_action(nullptr);
}

// The address the front forwards API requests from (and the API's internal listener).
const char* const kFrontHop = "127.0.0.1";

// Serves `server` behind the event-loop front (broadcaster/stream_server.h): the front owns the
// --http address and serves every SSE stream itself; everything else it forwards to `server`,
// which listens on an internal loopback port. On a shutdown signal the front ends its streams
// with a final `retry:` first (after `drain`, which runs while everything still serves), then
// `before_stop` runs, then the server stops.
void serve_behind_front(httplib::Server& server, Broadcaster& broadcaster, const Settings& s,
                        const std::string& role, ShutdownSignal& signal,
                        const std::function<void()>& drain, const std::function<void()>& before_stop) {
  auto [host, port] = parse_host_port(s.str("http"), "http");
  int internal = bind_server(server, kFrontHop, 0);
  // One event loop per --stream-loops, all on the --http port (SO_REUSEPORT): the kernel spreads
  // the connections, and the stream caps are shared out between the loops.
  StreamServerSettings front_settings = stream_server_settings(s, broadcaster.settings());
  front_settings.backend_host = kFrontHop;
  front_settings.backend_port = internal;
  const size_t loops = static_cast<size_t>(std::max(1L, s.integer("stream-loops")));
  front_settings.reuse_port = loops > 1;
  auto share = [loops](size_t cap) { return cap == 0 ? 0 : (cap + loops - 1) / loops; };
  front_settings.max_streams = share(front_settings.max_streams);
  front_settings.max_streams_per_ip = share(front_settings.max_streams_per_ip);
  std::vector<std::unique_ptr<StreamServer>> fronts;
  int bound = port;
  for (size_t i = 0; i < loops; ++i) {
    fronts.push_back(std::make_unique<StreamServer>(broadcaster.hub(), front_settings));
    bound = fronts.back()->listen(host, bound);
  }
  for (auto& front : fronts) front->start();
  auto stop_fronts = [&fronts] {
    for (auto& front : fronts) front->stop();
  };
  std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  spdlog::info("feedpipe {} listening on http://{}:{} (API on internal port {}, {} stream loop(s))", role,
               shown_host, bound, internal, loops);
  signal.set_action([&] {
    if (drain) drain();
    stop_fronts();
    if (before_stop) before_stop();
    server.stop();
  });
  if (!signal.received()) server.listen_after_bind();
  signal.set_action(nullptr);
  stop_fronts();
}

// The producer's part of a graceful shutdown: refuse new batches with 503, then give load
// balancers --shutdown-grace-ms to notice before the listener closes.
void drain_producer(producer::Producer& producer, const Settings& s) {
  producer.begin_drain();
  spdlog::info("shutting down: refusing new batches for {} ms before closing", s.integer("shutdown-grace-ms"));
  std::this_thread::sleep_for(std::chrono::milliseconds(s.integer("shutdown-grace-ms")));
}

// What the shutdown settings bound in each role (the process ends within their sum + 5 s).
const char* const kProducerGrace =
    "on SIGTERM, how long the API answers 503 (and /readyz fails) before it closes, so that load "
    "balancers move clients away";
const char* const kProducerDrain =
    "on SIGTERM, after the API closed: how long Kafka gets to acknowledge the jobs sent (the outbox "
    "sweep publishes the others again)";
const char* const kConsumerDrain =
    "on SIGTERM, how long the jobs in flight get to finish (the others are handed back to the group)";
const char* const kConsumerGrace =
    "on SIGTERM, after the drain: how long Kafka gets to take the last offset commits and the "
    "group leave (jobs whose offsets it did not take are redelivered)";
const char* const kRecorderDrain =
    "on SIGTERM, how long the outcomes already read get to be recorded (the others are read again)";
const char* const kRecorderGrace =
    "on SIGTERM, after the drain: how long Kafka gets to take the last offset commits, the group "
    "leave and the events (outcomes whose offsets it did not take are read again, and change nothing)";

std::string first_failure(const std::vector<std::string>& reasons) {
  for (const auto& r : reasons)
    if (!r.empty()) return r;
  return "";
}

}  // namespace

int standalone(int argc, char** argv) {
  Settings s("standalone",
             "Runs the whole pipeline in one process: the batch API, the web page, event streams,\n"
             "consumer workers and (unless --brokers names a real cluster) an embedded Kafka broker.");
  add_common_settings(s);
  add_http_settings(s, "127.0.0.1:8080");
  add_producer_settings(s);
  add_consumer_settings(s);
  add_broadcaster_settings(s);
  add_retention_settings(s);
  add_access_settings(s);
  add_callback_settings(s);
  add_shutdown_settings(
      s,
      "on SIGTERM, how long the consumer workers get to finish the jobs in flight (they stop taking "
      "jobs at once), and Kafka to acknowledge the jobs sent and close the events reader",
      std::string(kProducerGrace) + "; then also how long Kafka gets to take the consumers' last "
      "offset commits and group leave");
  s.add("consumers", std::to_string(std::max(1u, std::thread::hardware_concurrency())),
        "consumer workers (group members) in this process");
  if (!parse_settings(s, argc, argv)) return 0;
  const RetentionSettings retention = retention_settings(s);  // bad values fail before any waiting
  check_access_settings(s, true);
  const callbacks::CallbackSettings callbacks_cfg = callback_settings(s);  // also checks --allow-networks
  ShutdownSignal signal(shutdown_limits(s));
  MemoryTrimmer trimmer = memory_policy(s);

  KafkaSettings kafka = kafka_settings(s);  // a bad --kafka-config stops here, before any work
  migrate_database(s.str("db"));
  std::unique_ptr<EmbeddedBroker> broker;
  if (kafka.brokers.empty()) {
    broker = std::make_unique<EmbeddedBroker>(kafka.partitions);
    kafka.brokers = broker->bootstrap();
    spdlog::info("embedded Kafka broker on {} (messages are kept in memory)", kafka.brokers);
  } else {
    ensure_topics(kafka);
  }

  RetentionPruner pruner(s.str("db"), retention);
  callbacks::CallbackSender callback_sender(callbacks_cfg);
  auto producer_cfg = producer_settings(s, kafka);
  // The API sits behind the front: the front's own hop is trusted whatever --trusted-proxies says.
  producer_cfg.trusted_proxies.trust_front_hop(kFrontHop);
  // The embedded broker forgets everything on restart: unfinished jobs go out again from SQLite.
  producer_cfg.republish_open_jobs_on_start = broker != nullptr;
  producer_cfg.serve_events_page = false;  // the broadcaster's routes answer it, from the same code
  producer::Producer producer(producer_cfg);
  Broadcaster broadcaster(broadcaster_settings(s, kafka));
  std::vector<std::unique_ptr<consumer::Consumer>> consumers;
  for (long i = 0; i < s.integer("consumers"); ++i) {
    auto cs = consumer_settings(s, kafka);
    // In one process the hub hears of an event at commit; its copy from Kafka is then a no-op.
    cs.on_events_committed = [&hub = broadcaster.hub()](const std::vector<EventMessage>& events) {
      for (const auto& e : events) {
        delivery::observe_arrival(e.data);
        hub.on_event(e);
      }
    };
    // Nobody else can read the embedded broker's events, and it keeps every message in memory.
    cs.publish_events = broker == nullptr;
    consumers.push_back(std::make_unique<consumer::Consumer>(std::move(cs)));
  }

  auto server = make_server(http_settings(s));
  register_health_routes(*server, [&] {
    std::vector<std::string> reasons{producer.readiness()};
    if (!broadcaster.ready()) reasons.push_back("broadcaster has not joined the events topic yet");
    for (auto& c : consumers) reasons.push_back(c->readiness());
    return first_failure(reasons);
  });
  register_metrics_route(*server);
  enable_cors(*server, cors_policy(s));
  producer.register_routes(*server);
  broadcaster.register_routes(*server);
  producer::register_web_routes(*server, producer_cfg.api_tokens.enabled());

  broadcaster.start();
  for (auto& c : consumers) c->start();
  producer.start();
  pruner.start();
  callback_sender.start();
  auto drain = [&] {
    for (auto& c : consumers) c->begin_stop();  // their drain runs during the API's grace
    drain_producer(producer, s);
  };
  serve_behind_front(*server, broadcaster, s, "standalone", signal, drain, [&] { broadcaster.stop(); });
  callback_sender.stop();
  pruner.stop();
  producer.stop();
  for (auto& c : consumers) c->begin_stop();
  for (auto& c : consumers) c->stop();
  broadcaster.stop();
  spdlog::info("stopped");
  return 0;
}

int producer(int argc, char** argv) {
  Settings s("producer", "The batch API: accepts batches, publishes one job per feed, answers reads.");
  add_common_settings(s);
  add_http_settings(s, "127.0.0.1:8080");
  add_producer_settings(s);
  add_retention_settings(s);
  add_access_settings(s);
  add_shutdown_settings(s, kProducerDrain, kProducerGrace);
  if (!parse_settings(s, argc, argv)) return 0;
  const RetentionSettings retention = retention_settings(s);
  check_access_settings(s, true);
  ShutdownSignal signal(shutdown_limits(s));
  MemoryTrimmer trimmer = memory_policy(s);
  KafkaSettings kafka = kafka_settings(s);  // a bad --kafka-config stops here, before any work
  migrate_database(s.str("db"));
  ensure_topics(kafka);
  RetentionPruner pruner(s.str("db"), retention);
  const producer::ProducerSettings producer_cfg = producer_settings(s, kafka);
  producer::Producer producer(producer_cfg);
  auto server = make_server(http_settings(s));
  register_health_routes(*server, [&] { return producer.readiness(); });
  register_metrics_route(*server);
  enable_cors(*server, cors_policy(s));
  producer.register_routes(*server);
  producer::register_web_routes(*server, producer_cfg.api_tokens.enabled());
  producer.start();
  pruner.start();
  serve_until_signal(*server, s, "producer", signal, [&] { drain_producer(producer, s); });
  pruner.stop();
  producer.stop();
  return 0;
}

int consumer(int argc, char** argv) {
  Settings s("consumer",
             "A member of the consumer group feedpipe-consumers: fetches and parses feeds, and records\n"
             "them in --db, or, without --db, publishes the outcomes for a recorder.");
  add_common_settings(s, "");
  s.add("http", "", "HOST:PORT for /healthz, /readyz and /metrics (off when empty)");
  add_consumer_settings(s);
  add_callback_settings(s);
  add_shutdown_settings(s, kConsumerDrain, kConsumerGrace);
  if (!parse_settings(s, argc, argv)) return 0;
  const callbacks::CallbackSettings callbacks_cfg = callback_settings(s);  // a bad block stops here, before any work
  ShutdownSignal signal(shutdown_limits(s));
  MemoryTrimmer trimmer = memory_policy(s);
  KafkaSettings kafka = kafka_settings(s);  // a bad --kafka-config stops here, before any work
  // Each start-up step says when it begins: one that hangs (a locked database, a broker that does
  // not answer) shows in the log as the last line.
  spdlog::info("consumer starting: {}Kafka topics at {}",
               s.str("db").empty() ? "" : "database schema of " + s.str("db") + ", ", kafka.brokers);
  if (!s.str("db").empty())
    migrate_database(s.str("db"));
  else
    spdlog::info("consumer without --db: outcomes go to topic {}; a `feedpipe recorder --db FILE` must run "
                 "to record them", kOutcomesTopic);
  ensure_topics(kafka);
  spdlog::info("consumer joining the group {}", kConsumerGroup);
  consumer::Consumer worker(consumer_settings(s, kafka));
  // Callbacks are sent by the process that records batch completions: with --db, this one.
  std::unique_ptr<callbacks::CallbackSender> callback_sender;
  if (!s.str("db").empty()) callback_sender = std::make_unique<callbacks::CallbackSender>(callbacks_cfg);
  worker.start();
  if (callback_sender) callback_sender->start();
  if (s.str("http").empty()) {
    spdlog::info("feedpipe consumer running");
    signal.wait();
  } else {
    HttpServerSettings h;
    h.threads = 8;
    auto server = make_server(h);
    register_health_routes(*server, [&] { return worker.readiness(); });
    register_metrics_route(*server);
    serve_until_signal(*server, s, "consumer", signal, nullptr);
  }
  if (callback_sender) callback_sender->stop();
  worker.stop();
  return 0;
}

int broadcaster(int argc, char** argv) {
  Settings s("broadcaster",
             "Serves batch event streams (SSE) from Kafka, with history and gaps read from the SQLite file\n"
             "(--db) or, on a host without it, from a producer's API (--api URL); exactly one of the two.");
  add_common_settings(s, "");
  add_http_settings(s, "127.0.0.1:8081");
  add_broadcaster_settings(s);
  add_broadcaster_api_settings(s);
  add_access_settings(s);
  add_shutdown_settings(
      s, "on SIGTERM, after the streams ended: how long the Kafka events reader gets to close",
      "on SIGTERM, how long /readyz fails (streams still flow) before every stream ends with a final "
      "retry: and the listener closes, so that load balancers move clients away");
  if (!parse_settings(s, argc, argv)) return 0;
  check_access_settings(s, false);
  ShutdownSignal signal(shutdown_limits(s));
  MemoryTrimmer trimmer = memory_policy(s);
  KafkaSettings kafka = kafka_settings(s);  // a bad --kafka-config stops here, before any work
  BroadcasterSettings settings = broadcaster_api_settings(s, kafka);  // exactly one of --db and --api
  if (!settings.db_path.empty()) migrate_database(settings.db_path);
  ensure_topics(kafka);
  Broadcaster broadcaster(settings);
  auto server = make_server(http_settings(s));
  std::atomic<bool> draining{false};
  register_health_routes(*server, [&] {
    if (draining) return std::string("shutting down");
    return broadcaster.readiness();
  });
  register_metrics_route(*server);
  enable_cors(*server, cors_policy(s));
  broadcaster.register_routes(*server);
  broadcaster.start();
  auto drain = [&] {
    draining = true;
    spdlog::info("shutting down: failing /readyz for {} ms before the streams end", s.integer("shutdown-grace-ms"));
    std::this_thread::sleep_for(std::chrono::milliseconds(s.integer("shutdown-grace-ms")));
  };
  serve_behind_front(*server, broadcaster, s, "broadcaster", signal, drain, [&] { broadcaster.stop(); });
  broadcaster.stop();
  return 0;
}

int recorder(int argc, char** argv) {
  Settings s("recorder",
             "Records the job outcomes that consumers without --db publish to feed.refresh.outcomes\n"
             "(group feedpipe-recorders), and publishes their events.");
  add_common_settings(s);
  s.add("http", "", "HOST:PORT for /healthz, /readyz and /metrics (off when empty)");
  add_recorder_settings(s);
  add_outbound_address_settings(s);
  add_callback_settings(s);
  add_shutdown_settings(s, kRecorderDrain, kRecorderGrace);
  if (!parse_settings(s, argc, argv)) return 0;
  KafkaSettings kafka = kafka_settings(s);  // a bad --kafka-config stops here, before any work
  consumer::RecorderSettings settings = recorder_settings(s, kafka);
  const callbacks::CallbackSettings callbacks_cfg = callback_settings(s);
  ShutdownSignal signal(shutdown_limits(s));
  MemoryTrimmer trimmer = memory_policy(s);
  migrate_database(settings.db_path);
  ensure_topics(kafka);
  consumer::Recorder recorder(settings);
  callbacks::CallbackSender callback_sender(callbacks_cfg);  // the store side sends the callbacks
  recorder.start();
  callback_sender.start();
  if (s.str("http").empty()) {
    spdlog::info("feedpipe recorder running");
    signal.wait();
  } else {
    HttpServerSettings h;
    h.threads = 4;
    auto server = make_server(h);
    register_health_routes(*server, [&] { return recorder.readiness(); });
    register_metrics_route(*server);
    serve_until_signal(*server, s, "recorder", signal, nullptr);
  }
  callback_sender.stop();
  recorder.stop();
  return 0;
}

}  // namespace feedpipe::commands
