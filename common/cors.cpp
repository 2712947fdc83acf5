#include "common/cors.h"

#include <cctype>

#include "common/config.h"

namespace feedpipe {
namespace {

// Lowercases scheme and host, drops a trailing '/', and the scheme's default port;
// nullopt when `origin` is not scheme://host[:port].
std::optional<std::string> normalize_origin(std::string_view origin) {
  origin = trim_space(origin);
  if (!origin.empty() && origin.back() == '/') origin.remove_suffix(1);
  std::string out;
  for (char c : origin) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string scheme;
  if (out.rfind("http://", 0) == 0)
    scheme = "http";
  else if (out.rfind("https://", 0) == 0)
    scheme = "https";
  else
    return std::nullopt;
  std::string_view authority = std::string_view(out).substr(scheme.size() + 3);
  if (authority.empty() || authority.find_first_of("/?#@ ") != std::string_view::npos) return std::nullopt;
  std::string default_port = scheme == "http" ? ":80" : ":443";
  if (authority.size() > default_port.size() &&
      authority.substr(authority.size() - default_port.size()) == default_port && authority.back() != ']')
    out.resize(out.size() - default_port.size());
  return out;
}

}  // namespace

CorsPolicy CorsPolicy::parse(std::string_view list) {
  CorsPolicy p;
  for (std::string_view item : split_comma_list(list)) {
    if (item.empty()) continue;
    if (item == "*") {
      p.any_ = true;
      continue;
    }
    auto origin = normalize_origin(item);
    if (!origin)
      throw ConfigError("--cors-origins: '" + std::string(item) +
                        "' is not an origin (scheme://host[:port], e.g. https://app.example) or *");
    p.origins_.push_back(*origin);
  }
  return p;
}

std::optional<std::string> CorsPolicy::allowed(std::string_view origin) const {
  origin = trim_space(origin);
  if (!enabled() || origin.empty()) return std::nullopt;
  // Browsers send the origin as serialized by them: echo exactly that when admitted.
  if (any_) {
    for (char c : origin)  // never echo something that could split a header
      if (c == '\r' || c == '\n' || c == '\0') return std::nullopt;
    return std::string(origin);
  }
  auto normalized = normalize_origin(origin);
  if (!normalized) return std::nullopt;
  for (const auto& o : origins_)
    if (o == *normalized) return std::string(origin);
  return std::nullopt;
}

CorsPolicy::Headers CorsPolicy::response_headers(const std::string& allow_origin) {
  return {{"Access-Control-Allow-Origin", allow_origin},
          {"Vary", "Origin"},
          {"Access-Control-Expose-Headers", "Location, ETag, Retry-After"}};
}

CorsPolicy::Headers CorsPolicy::preflight_headers(const std::string& allow_origin) {
  return {{"Access-Control-Allow-Origin", allow_origin},
          {"Vary", "Origin"},
          {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
          {"Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"},
          {"Access-Control-Max-Age", "600"}};
}

std::string CorsPolicy::as_lines(const Headers& headers) {
  std::string out;
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  return out;
}

}  // namespace feedpipe
