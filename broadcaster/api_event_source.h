#pragma once
// The event source of a broadcaster without the database (`broadcaster --api URL`): a producer's
// JSON events page, GET URL/v1/batches/{id}/events?after=SEQ with Accept: application/json
// (and ?token= when stream tokens are on: the broadcaster knows the secret and signs the batch
// id itself, common/stream_token.h).
//
// HTTP: a cpp-httplib client per request (no keep-alive: an idle connection would hold one of the
// producer's few server threads), with connect and read timeouts. 404 batch_not_found is an unknown batch. A network
// error, a timeout, a 5xx or an answer that is not a page makes the source "down": that read
// throws SourceUnavailable, and until a backoff has passed (doubling from retry_min to
// retry_max) every read throws at once without a request, so that a dead API costs one timeout
// per backoff and not one per caller. The first failure logs a warning, the recovery an info line.
//
// readiness(): GET URL/healthz answers 200 (probed at most once a second; cached between).
// Threading: every method is thread-safe.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broadcaster/event_source.h"

namespace httplib {
class Client;
}

namespace feedpipe {

struct ApiSourceSettings {
  std::string url;                                   // http(s)://host[:port][/prefix] of a producer
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds read_timeout{3000};      // also the write timeout
  std::string stream_token_secret;                   // set: pages are read with ?token=
  std::chrono::milliseconds retry_min{200};          // backoff after the first failure …
  std::chrono::milliseconds retry_max{5000};         // … doubling up to this
};

class ApiEventSource : public EventSource {
 public:
  // Throws ConfigError when the URL is not http(s)://host[:port][/path].
  explicit ApiEventSource(ApiSourceSettings settings);
  ~ApiEventSource() override;

  std::optional<EventPage> read_after(const std::string& batch_id, int64_t after_seq, int limit) override;
  std::string readiness() override;
  std::string describe() const override { return "API " + settings_.url; }
  bool remote() const override { return true; }

  // Requests sent (pages and health probes), for tests.
  uint64_t requests() const;

 private:
  std::unique_ptr<httplib::Client> new_client();
  // Records a failure (starts or extends the backoff) and returns the exception to throw.
  SourceUnavailable failed(const std::string& why);
  void succeeded();

  ApiSourceSettings settings_;
  std::string origin_;  // scheme://host:port
  std::string prefix_;  // path prefix without a trailing '/', maybe empty

  mutable std::mutex mu_;  // guards everything below
  bool down_ = false;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point retry_at_{};
  std::string last_error_;
  uint64_t requests_ = 0;
  std::chrono::steady_clock::time_point probed_at_{};
  std::string probe_result_ = "the API has not been probed yet";
  bool probed_ = false;
};

}  // namespace feedpipe
