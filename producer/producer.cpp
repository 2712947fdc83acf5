#include "producer/producer.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <limits>

#include "common/db_pool.h"
#include "common/event_page_route.h"
#include "common/http.h"
#include "common/queries.h"
#include "common/stream_token.h"
#include "producer/batch_intake.h"

namespace feedpipe::producer {
namespace {

nlohmann::json accepted_body(const std::string& batch_id, const std::string& stream_token_secret) {
  nlohmann::json body{{"batch_id", batch_id},
                      {"status_url", "/v1/batches/" + batch_id},
                      {"events_url", "/v1/batches/" + batch_id + "/events"}};
  if (!stream_token_secret.empty()) {  // hex: nothing to escape in the query
    std::string token = stream_token(stream_token_secret, batch_id);
    body["stream_token"] = token;
    body["events_url"] = "/v1/batches/" + batch_id + "/events?token=" + token;
  }
  return body;
}

std::string etag_of(const std::string& body) { return "\"" + fnv1a_hex(body) + "\""; }

bool etag_matches(const std::string& if_none_match, const std::string& etag) {
  if (if_none_match == "*") return true;
  // A list of tags, each maybe weak (W/"…").
  return if_none_match.find(etag) != std::string::npos;
}

// Reads an integer query parameter within [min, max]; false (and a 400) when it is not one.
bool int_param(const httplib::Request& req, httplib::Response& res, const char* name, long min,
               long max, long& value) {
  if (!req.has_param(name)) return true;
  const std::string v = req.get_param_value(name);
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < min || n > max) {
    send_error(res, 400, "invalid_parameter",
               std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
                   std::to_string(max));
    return false;
  }
  value = n;
  return true;
}

// The feed id of a /v1/feeds/{id} path (digits, by the route); nullopt beyond int64 (404, not 500).
std::optional<int64_t> feed_id_of(const std::string& digits) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return id;
}

}  // namespace

Producer::Producer(ProducerSettings settings)
    : settings_(std::move(settings)),
      publisher_(PublisherSettings{settings_.db_path, settings_.kafka, settings_.outbox_sweep_interval,
                                   settings_.republish_open_jobs_on_start, settings_.job_lease,
                                   settings_.flush_timeout}),
      submit_limiter_(settings_.submit_rate_per_minute, settings_.rate_limit_max_clients) {}

void Producer::start() { publisher_.start(); }
void Producer::stop() { publisher_.stop(); }

std::string Producer::readiness() {
  try {
    Database& db = thread_db(settings_.db_path);
    db.write([&] { db.exec("CREATE TEMP TABLE IF NOT EXISTS readiness_probe (x)"); });
  } catch (const std::exception& e) {
    return std::string("database not writable: ") + e.what();
  }
  if (draining_) return "shutting down";
  if (!publisher_.broker_reachable()) return "Kafka broker not reachable";
  return "";
}

void Producer::register_routes(httplib::Server& server) {
  server.Post("/v1/batches", [this](const auto& req, auto& res) { post_batch(req, res); });
  server.Get("/v1/batches", [this](const auto& req, auto& res) { list_batches(req, res); });
  server.Get(R"(/v1/batches/([^/]+))", [this](const auto& req, auto& res) { get_batch(req, res); });
  server.Get(R"(/v1/feeds/(\d+))", [this](const auto& req, auto& res) { get_feed(req, res); });
  server.Get(R"(/v1/feeds/(\d+)/items)", [this](const auto& req, auto& res) { get_feed_items(req, res); });
  if (settings_.serve_events_page) {
    server.Get(R"(/v1/batches/([^/]+)/events)", [this](const auto& req, auto& res) { get_events_page(req, res); });
    refuse_other_methods(server, R"(/v1/batches/([^/]+)/events)", {"GET"});
  }
  refuse_other_methods(server, "/v1/batches", {"GET", "POST"});
  refuse_other_methods(server, R"(/v1/batches/([^/]+))", {"GET"});
  refuse_other_methods(server, R"(/v1/feeds/(\d+))", {"GET"});
  refuse_other_methods(server, R"(/v1/feeds/(\d+)/items)", {"GET"});
}

bool Producer::admit_submission(const httplib::Request& req, httplib::Response& res) {
  std::string rate_key;
  if (settings_.api_tokens.enabled()) {
    auto token = bearer_token(req.get_header_value("Authorization"));
    if (!token || !settings_.api_tokens.accepts(*token)) {
      // Never log the token itself: only that one was refused, and from where.
      spdlog::debug("POST /v1/batches from {} refused: {}", client_address(req, settings_.trusted_proxies),
                    token ? "invalid bearer token" : "no bearer token");
      res.set_header("WWW-Authenticate", token ? "Bearer error=\"invalid_token\"" : "Bearer");
      send_error(res, 401, "unauthorized",
                 token ? "the bearer token is not valid"
                       : "submitting a batch needs an Authorization: Bearer <token> header");
      return false;
    }
    rate_key = token_key(*token);
  } else {
    rate_key = "ip:" + client_address(req, settings_.trusted_proxies);
  }
  if (submit_limiter_.enabled()) {
    auto decision = submit_limiter_.acquire(rate_key);
    if (!decision.allowed) {
      send_rate_limited(res, decision.retry_after_s,
                        "more than " + std::to_string(settings_.submit_rate_per_minute) +
                            " batches per minute; retry in " + std::to_string(decision.retry_after_s) + " s");
      return false;
    }
  }
  return true;
}

void Producer::post_batch(const httplib::Request& req, httplib::Response& res) {
  if (draining_) {
    res.set_header("Retry-After", "5");
    return send_error(res, 503, "shutting_down", "this producer is shutting down; retry in a few seconds");
  }
  if (!admit_submission(req, res)) return;
  auto parsed = parse_batch_request(req.body, settings_.max_batch_feeds);
  if (auto* refusal = std::get_if<Refusal>(&parsed)) {
    send_error(res, refusal->status, refusal->code, refusal->message);
    return;
  }
  const auto& request = std::get<BatchRequest>(parsed);
  Database& db = thread_db(settings_.db_path);
  db.set_cache_kib(Database::kWriterCacheKib);  // a batch of thousands of feeds touches many pages
  auto result = create_batch(db, request,
                             req.get_header_value("Idempotency-Key"), req.body, publisher_.partitioner());
  db.set_cache_kib(Database::kDefaultCacheKib);
  if (auto* refusal = std::get_if<Refusal>(&result)) {
    send_error(res, refusal->status, refusal->code, refusal->message);
    return;
  }
  const auto& created = std::get<CreatedBatch>(result);
  if (!created.replayed) {
    publisher_.publish(created.jobs);
    publisher_.publish_events(created.events);
    // A batch of thousands of feeds writes thousands of pages, and its commit usually makes a
    // checkpoint due: it runs once the jobs are on their way rather than hold them up.
    db.run_due_checkpoint();
    spdlog::info("batch {} accepted: {} feed(s)", created.batch_id, request.feeds.size());
    for (const auto& ev : created.events)
      if (ev.type == "batch.completed")
        spdlog::info("batch {} completed: {} feed(s), every one failed at once (not fetchable URLs)",
                     created.batch_id, request.feeds.size());
  }
  res.set_header("Location", "/v1/batches/" + created.batch_id);
  send_json(res, 202, accepted_body(created.batch_id, settings_.stream_token_secret));
}

void Producer::get_batch(const httplib::Request& req, httplib::Response& res) {
  const std::string batch_id = req.matches[1];
  auto snapshot = batch_snapshot(thread_db(settings_.db_path), batch_id);
  if (!snapshot) {
    send_error(res, 404, "batch_not_found", "no batch with id " + batch_id);
    return;
  }
  std::string body = snapshot->dump();
  std::string etag = etag_of(body);
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", "no-cache");
  if (req.has_header("If-None-Match") && etag_matches(req.get_header_value("If-None-Match"), etag)) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(body, "application/json");
}

void Producer::list_batches(const httplib::Request& req, httplib::Response& res) {
  long limit = 50;
  if (!int_param(req, res, "limit", 1, 500, limit)) return;
  std::string before = req.has_param("before") ? req.get_param_value("before") : "";
  send_json(res, 200, feedpipe::list_batches(thread_db(settings_.db_path), static_cast<int>(limit), before));
}

void Producer::get_feed(const httplib::Request& req, httplib::Response& res) {
  auto feed_id = feed_id_of(req.matches[1]);
  auto state = feed_id ? feed_state(thread_db(settings_.db_path), *feed_id) : std::nullopt;
  if (!state) return send_error(res, 404, "feed_not_found", "no feed with id " + std::string(req.matches[1]));
  send_json(res, 200, *state);
}

void Producer::get_feed_items(const httplib::Request& req, httplib::Response& res) {
  auto feed_id = feed_id_of(req.matches[1]);
  long limit = 50, after = 0;
  if (!int_param(req, res, "limit", 1, 500, limit)) return;
  if (!int_param(req, res, "after", 0, std::numeric_limits<long>::max(), after)) return;
  auto items = feed_id ? feed_items(thread_db(settings_.db_path), *feed_id, static_cast<int>(limit), after)
                       : std::nullopt;
  if (!items) return send_error(res, 404, "feed_not_found", "no feed with id " + std::string(req.matches[1]));
  send_json(res, 200, *items);
}

void Producer::get_events_page(const httplib::Request& req, httplib::Response& res) {
  const std::string batch_id = req.matches[1];
  if (!check_stream_token(req, res, batch_id, settings_.stream_token_secret)) return;
  if (!wants_json_page(req))
    return send_error(res, 406, "not_acceptable",
                      "this API answers a batch's events as a JSON page (Accept: application/json); "
                      "event streams are served by a broadcaster");
  try {
    answer_event_page(req, res, batch_id, settings_.events_page_limit, [&](int64_t after, int limit) {
      return read_event_page(thread_db(settings_.db_path), batch_id, after, limit);
    });
  } catch (const std::exception& e) {
    spdlog::error("GET /v1/batches/{}/events: {}", batch_id, e.what());
    send_error(res, 500, "internal", "cannot read the batch's events; try again");
  }
}

}  // namespace feedpipe::producer
