#pragma once
// The HTTP face of batch events: GET /v1/batches/{id}/events.
//
//   Accept: text/event-stream (or anything without application/json): a Server-Sent Events
//     stream. First a `retry:` hint, then the events after Last-Event-ID (header, else
//     ?last_event_id=; 0 when absent), then live events as they commit, with a `: ping` comment
//     after each `heartbeat` of silence. The stream ends after batch.completed, or when the hub
//     stops. Headers: Cache-Control: no-cache, X-Accel-Buffering: no (nginx must not buffer).
//   Accept: application/json: one page {"events":[{"id","event","data"}…],"next_after","done"}
//     of the events after ?after= (default 0), read from the hub's source (SQLite or a producer's
//     API), for clients that poll; the same page as the producer's (common/event_page_route.h).
//     A source that cannot be read now (an API that is down) is 503 events_unavailable + Retry-After.
//   Refusals carry {"error":{"code","message"}}: 404 batch_not_found, 400 for a cursor that is
//     not a non-negative integer, 403 stream_token_required / invalid_stream_token when a
//     stream_token_secret is set and ?token= is not the batch's token (common/stream_token.h).
//
// GET /v1/events (one stream for many batches) is not here: only the event-loop front serves it
// (broadcaster/stream_server.h), as it serves every stream the commands open.
//
// Threading: cpp-httplib serves each connection on a thread of its pool, and an open stream
// holds its thread until it ends. The hub must outlive the server's request threads.
#include <httplib.h>

#include <chrono>
#include <string>

#include "broadcaster/event_hub.h"

namespace feedpipe {

struct StreamSettings {
  std::chrono::milliseconds heartbeat{15000};  // silence after which a `: ping` is sent
  int retry_ms = 3000;                         // the `retry:` hint for reconnecting browsers
  int poll_page_limit = 1000;                  // events per JSON page
  std::string stream_token_secret;             // set: ?token= must be the batch's signed token (403)
};

void register_stream_routes(httplib::Server& server, EventHub& hub, const StreamSettings& settings);

}  // namespace feedpipe
