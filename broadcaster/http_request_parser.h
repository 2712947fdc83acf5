#pragma once
// A minimal HTTP/1.x request-head parser for the stream server's event loop: the request line and
// the header fields, nothing else (bodies are relayed, not parsed). Incremental in the simplest
// way: the caller appends bytes and calls parse_request_head() until it stops answering
// `incomplete`.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace feedpipe::http1 {

struct RequestHead {
  std::string method;
  std::string target;   // as sent: path and query
  std::string path;     // percent-decoded path
  std::string query;    // the raw query, without '?'
  int minor_version = 1;  // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed
  size_t head_bytes = 0;  // length of the head in the buffer, blank line included

  // The first header of that name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

enum class ParseStatus { complete, incomplete, bad_request, too_large };

// Parses the head at the start of `buffer`. `max_head_bytes` bounds the head (too_large when the
// blank line is not within it).
ParseStatus parse_request_head(std::string_view buffer, size_t max_head_bytes, RequestHead& out);

// The value of query parameter `name` (percent- and '+'-decoded), or nullopt.
std::optional<std::string> query_param(std::string_view query, std::string_view name);
// Every value of query parameter `name`, in order (decoded the same way); a malformed escape is
// an empty value.
std::vector<std::string> query_params(std::string_view query, std::string_view name);

// Percent-decoding; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

bool iequals(std::string_view a, std::string_view b);

}  // namespace feedpipe::http1
