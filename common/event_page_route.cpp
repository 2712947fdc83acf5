#include "common/event_page_route.h"

#include <charconv>

#include "common/http.h"
#include "common/metrics.h"
#include "common/stream_token.h"

namespace feedpipe {
namespace {

metrics::Counter& page_requests() {
  static auto& c = metrics::counter("feedpipe_events_page_requests_total",
                                    "JSON events pages answered (GET /v1/batches/{id}/events with Accept: application/json).");
  return c;
}

}  // namespace

bool wants_json_page(const httplib::Request& req) {
  const std::string accept = req.get_header_value("Accept");
  return accept.find("application/json") != std::string::npos &&
         accept.find("text/event-stream") == std::string::npos;
}

bool check_stream_token(const httplib::Request& req, httplib::Response& res, const std::string& batch_id,
                        const std::string& secret) {
  if (secret.empty()) return true;
  const bool has_token = req.has_param("token");
  if (has_token && stream_token_valid(secret, batch_id, req.get_param_value("token"))) return true;
  send_error(res, 403, has_token ? "invalid_stream_token" : "stream_token_required",
             has_token ? "the stream token does not match this batch"
                       : "this stream needs ?token= (the stream_token answered with the batch)");
  return false;
}

void answer_event_page(const httplib::Request& req, httplib::Response& res, const std::string& batch_id,
                       int limit, const EventPageReader& read) {
  int64_t after = 0;
  if (req.has_param("after")) {
    const std::string text = req.get_param_value("after");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), after);
    if (ec != std::errc() || end != text.data() + text.size() || after < 0)
      return send_error(res, 400, "invalid_after", "after must be a non-negative integer (an event id)");
  }
  page_requests().add();
  auto page = read(after, limit);
  if (!page) return send_error(res, 404, "batch_not_found", "no batch with id " + batch_id);
  res.set_header("Cache-Control", "no-cache");
  send_json(res, 200, event_page_json(*page));
}

}  // namespace feedpipe
