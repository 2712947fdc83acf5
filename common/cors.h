#pragma once
// Cross-origin access (--cors-origins): which browser origins may call the API and open streams.
// Off when no origin is configured. A matching request's Origin is echoed in
// Access-Control-Allow-Origin (with Vary: Origin); `*` admits every origin (still echoed).
//
//   CorsPolicy cors = CorsPolicy::parse("https://app.example, https://admin.example");
//   if (auto origin = cors.allowed(request_origin)) → add cors.response_headers(*origin)
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace feedpipe {

class CorsPolicy {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  CorsPolicy() = default;
  // A comma-separated list of origins (scheme://host[:port], a trailing '/' is ignored) or `*`.
  // Throws ConfigError for an item that is not an http(s) origin.
  static CorsPolicy parse(std::string_view list);

  bool enabled() const { return any_ || !origins_.empty(); }
  // The value for Access-Control-Allow-Origin when `origin` (the request's Origin header) is
  // admitted, else nullopt. Scheme and host compare case-insensitively.
  std::optional<std::string> allowed(std::string_view origin) const;

  // Headers for an actual (non-preflight) response to an admitted origin.
  static Headers response_headers(const std::string& allow_origin);
  // Headers for a preflight (OPTIONS) answer to an admitted origin.
  static Headers preflight_headers(const std::string& allow_origin);
  // Both as raw HTTP header lines ("Name: value\r\n"…), for the stream server.
  static std::string as_lines(const Headers& headers);

 private:
  bool any_ = false;
  std::vector<std::string> origins_;  // normalized
};

}  // namespace feedpipe
