#pragma once
// The JSON events page, GET /v1/batches/{id}/events?after=SEQ with Accept: application/json,
// answered the same way by the producer (from its database) and by a broadcaster (from its event
// source): {"events":[{"id","event","data"}…],"next_after","done"} (common/queries.h's EventPage).
//
//   ?after= a non-negative integer (default 0), else 400 invalid_after; unknown batch 404
//   batch_not_found; with a stream token secret, ?token= must be the batch's token (403
//   stream_token_required / invalid_stream_token, common/stream_token.h). CORS headers come from
//   the server's enable_cors (common/http.h). Every page answered counts in
//   feedpipe_events_page_requests_total.
#include <httplib.h>

#include <functional>
#include <optional>
#include <string>

#include "common/queries.h"

namespace feedpipe {

// True when the request asks for the JSON page rather than a stream.
bool wants_json_page(const httplib::Request& req);

// False (and a 403 in `res`) when `secret` is set and ?token= is not the batch's token.
bool check_stream_token(const httplib::Request& req, httplib::Response& res, const std::string& batch_id,
                        const std::string& secret);

// Reads the page through `read(after_seq, limit)` (nullopt: unknown batch) and answers it.
// The stream token is checked by the caller (check_stream_token). Exceptions from `read` propagate.
using EventPageReader = std::function<std::optional<EventPage>(int64_t after_seq, int limit)>;
void answer_event_page(const httplib::Request& req, httplib::Response& res, const std::string& batch_id,
                       int limit, const EventPageReader& read);

}  // namespace feedpipe
