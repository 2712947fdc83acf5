#pragma once
// Reading a POST /v1/batches body: `{"feeds":["https://…",…],"callback_url":…}` into a BatchRequest, or a Refusal
// with DESIGN.md's status for the case (400 malformed JSON or wrong shape, 422 empty `feeds`,
// 413 more feeds than allowed). Pure and thread-safe; never throws.
//
// The body is read as a stream (SAX), never built into a JSON tree: memory stays proportional
// to the feeds kept (at most `max_feeds` strings), whatever the body holds. A tree would cost
// about 80 bytes per nested array, so a 16 MiB body of `[` alone would take over a gigabyte.
#include <cstddef>
#include <string>
#include <vector>
#include <variant>

namespace feedpipe::producer {

// A refusal: HTTP status, machine-readable code and a message for the user.
struct Refusal {
  int status;
  std::string code;
  std::string message;
};

struct BatchRequest {
  std::vector<std::string> feeds;
  std::string callback_url = {};  // "callback_url": an absolute http(s) URL, or empty when not asked for
};

struct BatchRequestLimits {
  size_t max_feeds = 10000;  // more feeds: 413 batch_too_large
  int max_depth = 32;        // JSON nested deeper than this: 400 invalid_request (the shape needs 2)
  size_t max_callback_url_bytes = 2048;  // a longer "callback_url": 422 invalid_callback_url
};

// Parses and validates the body. When several problems apply, the first of: malformed JSON
// (or nesting beyond max_depth), not an object, `feeds` missing or not an array, empty, too many
// feeds, an element that is not a string, a "callback_url" that is not an absolute http(s) URL
// (422 invalid_callback_url; null counts as absent). A repeated key: the last one counts.
std::variant<BatchRequest, Refusal> parse_batch_request(const std::string& body, const BatchRequestLimits& limits);

inline std::variant<BatchRequest, Refusal> parse_batch_request(const std::string& body, size_t max_feeds) {
  return parse_batch_request(body, BatchRequestLimits{max_feeds});
}

}  // namespace feedpipe::producer
