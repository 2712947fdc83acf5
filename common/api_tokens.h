#pragma once
// The bearer tokens that may submit batches (--api-tokens, --api-tokens-file). Only the tokens'
// SHA-256 digests are kept, and a presented token is checked against every one of them in
// constant time. No token ever appears in a message or a log line.
//
//   ApiTokens tokens = ApiTokens::load(file_path, comma_list);  // throws ConfigError
//   if (tokens.enabled() && !tokens.accepts(bearer_token(header).value_or(""))) → 401
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/hmac.h"

namespace feedpipe {

class ApiTokens {
 public:
  ApiTokens() = default;
  // Tokens from a file's text: one per line, surrounding whitespace trimmed, blank lines and lines
  // starting with '#' ignored. Throws ConfigError naming `source` and the line (never the token)
  // when a token has characters outside RFC 6750's token68 set.
  static std::vector<std::string> parse_file_text(std::string_view text, const std::string& source);
  // Tokens from a comma-separated list; blanks ignored; same character rule.
  static std::vector<std::string> parse_list(std::string_view list, const std::string& source);
  // Both sources together (either may be empty). Throws ConfigError when the file cannot be read
  // or when a file is named but holds no token (a typo must not silently disable auth).
  static ApiTokens load(const std::string& file_path, const std::string& list);
  static ApiTokens of(const std::vector<std::string>& tokens);

  bool enabled() const { return !digests_.empty(); }
  size_t size() const { return digests_.size(); }
  // True when `token` is one of the tokens; the time taken does not depend on which one, nor on
  // how much of it matches.
  bool accepts(std::string_view token) const;

 private:
  std::vector<Digest> digests_;
};

// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive), or
// nullopt when the header is absent, uses another scheme, or has no token.
std::optional<std::string> bearer_token(std::string_view authorization);

// A key for per-token bookkeeping (rate limits) that does not reveal the token.
std::string token_key(std::string_view token);

}  // namespace feedpipe
