#pragma once
// Where the event hub (broadcaster/event_hub.h) reads a batch's events beyond what Kafka brings:
// its history for a first subscriber, the gap before an early arrival, the periodic sweep and
// the JSON page. Two implementations:
//   SqliteEventSource: the shared SQLite file (`broadcaster --db`, `standalone`).
//   ApiEventSource (broadcaster/api_event_source.h): a producer's JSON events page over HTTP
//     (`broadcaster --api URL`), for broadcasters on hosts without the database.
//
// Threading: read_after() and readiness() may be called from any thread, concurrently (the hub
// makes at most one read at a time per batch, but reads of different batches overlap).
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/queries.h"

namespace feedpipe {

// The source cannot answer now (the API is down, times out or fails); the caller retries later.
class SourceUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Events of the batch with seq > after_seq, in seq order, at most `limit` (a source may answer
  // fewer: pages end at its own page size); nullopt when no such batch exists. Throws
  // SourceUnavailable or DbError when the source cannot be read.
  virtual std::optional<EventPage> read_after(const std::string& batch_id, int64_t after_seq, int limit) = 0;
  // Empty when the source can be read, else why not (for /readyz).
  virtual std::string readiness() { return ""; }
  // True for a source whose reads may take long (over the network): the hub then reads gaps on
  // its sweep thread instead of the thread that delivers Kafka's events.
  virtual bool remote() const { return false; }
  // What the logs call it ("SQLite file X", "API http://…").
  virtual std::string describe() const = 0;
};

// Reads `db_path` through one connection per calling thread (common/db_pool.h).
class SqliteEventSource : public EventSource {
 public:
  explicit SqliteEventSource(std::string db_path) : db_path_(std::move(db_path)) {}
  std::optional<EventPage> read_after(const std::string& batch_id, int64_t after_seq, int limit) override;
  std::string describe() const override { return "SQLite file " + db_path_; }

 private:
  std::string db_path_;
};

}  // namespace feedpipe
