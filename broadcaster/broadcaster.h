#pragma once
// The broadcaster role: pushes each batch's events to the clients watching it, over Server-Sent
// Events (and as JSON pages for clients that poll). Events come from every partition of
// feed.refresh.events (this replica reads them all, outside any consumer group) and from the
// source of truth: a new subscriber's history, Last-Event-ID replays, gaps in what Kafka
// delivered, and events Kafka never delivered (a periodic sweep). Each subscriber gets every
// event after its cursor exactly once, in seq order; see broadcaster/event_hub.h. The source is
// the SQLite file (db_path) or, with api_url set instead, a producer's JSON events page over
// HTTP (broadcaster/api_event_source.h), for broadcasters on hosts without the database.
//
// Usage (the `broadcaster` and `standalone` commands):
//   Broadcaster b(settings);
//   b.register_routes(server);   // GET /v1/batches/{id}/events
//   b.start();                   // /readyz: b.ready()
//   ... server.listen(...) ...
//   b.stop();                    // ends open streams; then stop the server
//
// The commands serve streams through the event-loop front instead (broadcaster/stream_server.h,
// on hub()); the routes registered here stay for the JSON page and for direct use.
//
// Threading: start(), stop() and ready() may be called from any thread; routes run on the
// server's threads, and each open stream holds one of them until it ends. The Broadcaster must
// outlive the server's request threads. Call stop() before stopping the server so that open
// streams end at once instead of at their next heartbeat.
// Errors: the constructor throws ConfigError unless exactly one of db_path and api_url is set (or
// for a malformed api_url); start() throws DbError when the database cannot be opened or migrated
// and KafkaError for a bad Kafka configuration; an unreachable broker is retried in the
// background (ready() stays false until the partitions are assigned), and so is an API that is
// down (ready() stays false until it answers /healthz; open streams keep Kafka's events).
#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>

#include "broadcaster/event_hub.h"
#include "broadcaster/event_reader.h"
#include "broadcaster/stream_routes.h"
#include "common/kafka.h"

namespace feedpipe {

struct BroadcasterSettings {
  std::string db_path;                            // the shared SQLite file, or …
  std::string api_url;                            // … a producer's URL (exactly one of the two)
  std::chrono::milliseconds api_connect_timeout{1000};  // --api: connect timeout of a page read
  std::chrono::milliseconds api_timeout{3000};          // --api: read timeout of a page read
  KafkaSettings kafka;
  std::chrono::milliseconds heartbeat{15000};     // `: ping` after this much silence on a stream
  std::chrono::milliseconds sweep_interval{1000}; // how often watched batches are re-read from the source
  int retry_ms = 3000;                            // SSE `retry:` hint
  int poll_page_limit = 1000;                     // events per JSON page
  size_t max_streams = 20000;                     // open SSE streams per process (then 503)
  size_t stream_buffer_bytes = 256 * 1024;        // a stream lagging further is dropped
  std::string stream_token_secret;                // set: streams need ?token= (common/stream_token.h)
  std::chrono::milliseconds reader_close_timeout{10000};  // on stop: the Kafka reader's close
};

class Broadcaster {
 public:
  explicit Broadcaster(BroadcasterSettings settings);
  ~Broadcaster();  // stop()
  Broadcaster(const Broadcaster&) = delete;
  Broadcaster& operator=(const Broadcaster&) = delete;

  // Throws ConfigError unless exactly one of db_path and api_url is set.
  static void check_source(const BroadcasterSettings& settings);

  // Applies missing migrations (with db_path), starts the sweep and the Kafka reader.
  void start();
  // Ends open streams and stops reading Kafka. Idempotent.
  void stop();
  // Adds GET /v1/batches/{id}/events to the server.
  void register_routes(httplib::Server& server);
  // True once the reader has every partition of feed.refresh.events assigned and the event
  // source can be read (with api_url: the API answers /healthz).
  bool ready() const { return readiness().empty(); }
  // Empty when ready, else why not.
  std::string readiness() const;
  // The hub and stream settings, for the event-loop front (broadcaster/stream_server.h) that
  // serves the streams themselves; register_routes() then only matters for the JSON page.
  EventHub& hub() { return hub_; }
  const BroadcasterSettings& settings() const { return settings_; }

 private:
  BroadcasterSettings settings_;
  std::shared_ptr<EventSource> source_;
  EventHub hub_;
  std::unique_ptr<EventReader> reader_;
};

}  // namespace feedpipe
