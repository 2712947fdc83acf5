#pragma once
// The producer role: the batch API. It accepts batches (POST /v1/batches), writes them to SQLite
// as the outbox, publishes one job message per feed, and answers the read endpoints for batches
// and feeds. Request handlers run on the HTTP server's threads, each with its own SQLite
// connection. Errors in a request are answered with DESIGN.md's JSON error; they never stop
// the process.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "common/api_tokens.h"
#include "common/client_address.h"
#include "common/rate_limiter.h"
#include "producer/job_publisher.h"

namespace feedpipe::producer {

struct ProducerSettings {
  std::string db_path;
  KafkaSettings kafka;
  size_t max_batch_feeds = 10000;
  std::chrono::milliseconds outbox_sweep_interval{5000};
  std::chrono::milliseconds job_lease{300000};  // a job running longer is published again
  bool republish_open_jobs_on_start = false;  // set for an embedded (in-memory) broker
  std::chrono::milliseconds flush_timeout{10000};  // on stop: Kafka's acknowledgement of sent jobs
  // GET /v1/batches/{id}/events with Accept: application/json (the JSON events page, which
  // broadcasters with --api read); `standalone` leaves it to its broadcaster's routes.
  bool serve_events_page = true;
  int events_page_limit = 1000;  // events per JSON page
  // Access (all off unless configured): bearer tokens for POST /v1/batches; batches per minute
  // per token (per client address without tokens), 0 = no limit; clients the limiter remembers;
  // the secret that signs stream tokens (empty: streams need none); proxies whose
  // X-Forwarded-For names the client.
  ApiTokens api_tokens;
  long submit_rate_per_minute = 0;
  size_t rate_limit_max_clients = 100000;
  std::string stream_token_secret;
  TrustedProxies trusted_proxies = TrustedProxies::parse("127.0.0.1,::1");
};

class Producer {
 public:
  explicit Producer(ProducerSettings settings);
  void start();
  // Refuses new batches with 503 and Retry-After from now on (graceful shutdown: requests in
  // progress finish, a load balancer sends new ones elsewhere).
  void begin_drain() { draining_ = true; }
  void stop();
  void register_routes(httplib::Server& server);
  // Empty when ready, else why not (database not writable, broker unreachable).
  std::string readiness();

 private:
  void post_batch(const httplib::Request& req, httplib::Response& res);
  // Checks the bearer token and the submit rate; false when `res` holds the refusal.
  bool admit_submission(const httplib::Request& req, httplib::Response& res);
  void get_batch(const httplib::Request& req, httplib::Response& res);
  void list_batches(const httplib::Request& req, httplib::Response& res);
  void get_feed(const httplib::Request& req, httplib::Response& res);
  void get_feed_items(const httplib::Request& req, httplib::Response& res);
  void get_events_page(const httplib::Request& req, httplib::Response& res);

  ProducerSettings settings_;
  JobPublisher publisher_;
  RateLimiter submit_limiter_;
  std::atomic<bool> draining_{false};
};

}  // namespace feedpipe::producer
