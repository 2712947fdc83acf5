#include "broadcaster/stream_routes.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <optional>
#include <string>

#include "broadcaster/delivery_metrics.h"
#include "broadcaster/sse.h"
#include "common/clock.h"
#include "common/http.h"
#include "common/event_page_route.h"

namespace feedpipe {
namespace {

// A seq from a header or query parameter: a non-negative integer, or nullopt.
std::optional<int64_t> parse_seq(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

void serve_stream(EventHub& hub, const StreamSettings& settings, const std::string& batch_id,
                  const httplib::Request& req, httplib::Response& res) {
  int64_t last_event_id = 0;
  std::string cursor = req.get_header_value("Last-Event-ID");
  if (cursor.empty() && req.has_param("last_event_id")) cursor = req.get_param_value("last_event_id");
  if (!cursor.empty()) {
    auto seq = parse_seq(cursor);
    if (!seq) return send_error(res, 400, "invalid_last_event_id", "Last-Event-ID must be a non-negative integer (an event id)");
    last_event_id = *seq;
  }
  std::shared_ptr<Subscription> sub = hub.subscribe(batch_id, last_event_id);
  if (!sub) return send_error(res, 404, "batch_not_found", "no batch with id " + batch_id);

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  // Called again and again on this connection's thread until sink.done() or a failed write.
  auto first = std::make_shared<bool>(true);
  res.set_chunked_content_provider(
      "text/event-stream",
      [sub, first, heartbeat = settings.heartbeat, retry_ms = settings.retry_ms](
          size_t, httplib::DataSink& sink) {
        std::string out;
        std::vector<EventMessage> events;
        const bool live = !*first;  // after the backlog: events as they are committed
        if (*first) {  // the hint and the backlog go out at once
          *first = false;
          out = sse::format_retry(retry_ms);
          events = sub->next(std::chrono::milliseconds(0));
        } else {
          events = sub->next(heartbeat);
        }
        for (const EventMessage& e : events) out += sse::format_event(e.seq, e.type, e.data);
        bool ending = sub->finished() || sub->stopped();
        if (out.empty() && !ending) out = sse::format_comment("ping");
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // client gone
        if (!events.empty()) {
          delivery::events_delivered().add(events.size());
          if (live) {
            const int64_t written_at = now_ms();
            for (const EventMessage& e : events)
              if (auto ts = delivery::event_ts_ms(e.data)) delivery::observe_latency(*ts, written_at);
          }
        }
        if (ending) sink.done();
        return true;
      });
}

}  // namespace

void register_stream_routes(httplib::Server& server, EventHub& hub, const StreamSettings& settings) {
  refuse_other_methods(server, R"(/v1/batches/([^/]+)/events)", {"GET"});
  server.Get(R"(/v1/batches/([^/]+)/events)",
             [&hub, settings](const httplib::Request& req, httplib::Response& res) {
               const std::string batch_id = req.matches[1];
               if (!check_stream_token(req, res, batch_id, settings.stream_token_secret)) return;
               try {
                 if (wants_json_page(req))
                   answer_event_page(req, res, batch_id, settings.poll_page_limit,
                                     [&](int64_t after, int limit) { return hub.read_page(batch_id, after, limit); });
                 else
                   serve_stream(hub, settings, batch_id, req, res);
               } catch (const SourceUnavailable& e) {
                 res.set_header("Retry-After", "2");
                 send_error(res, 503, "events_unavailable", "the batch's events cannot be read right now; retry shortly");
               } catch (const std::exception& e) {
                 spdlog::error("GET /v1/batches/{}/events: {}", batch_id, e.what());
                 send_error(res, 500, "internal", "cannot read the batch's events; try again");
               }
             });
}

}  // namespace feedpipe
