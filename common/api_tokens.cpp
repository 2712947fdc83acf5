#include "common/api_tokens.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "common/config.h"

namespace feedpipe {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool is_token68(std::string_view t) {
  size_t i = 0;
  auto body = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  while (i < t.size() && body(t[i])) ++i;
  if (i == 0) return false;
  while (i < t.size() && t[i] == '=') ++i;
  return i == t.size();
}

}  // namespace

std::vector<std::string> ApiTokens::parse_file_text(std::string_view text, const std::string& source) {
  std::vector<std::string> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    if (!is_token68(line))
      throw ConfigError(source + " line " + std::to_string(line_no) +
                        ": not a valid bearer token (allowed: letters, digits, - . _ ~ + / and trailing =)");
    out.emplace_back(line);
  }
  return out;
}

std::vector<std::string> ApiTokens::parse_list(std::string_view list, const std::string& source) {
  std::vector<std::string> out;
  size_t index = 0;
  for (std::string_view item : split_comma_list(list)) {
    ++index;
    if (item.empty()) continue;
    if (!is_token68(item))
      throw ConfigError(source + ": item " + std::to_string(index) +
                        " is not a valid bearer token (allowed: letters, digits, - . _ ~ + / and trailing =)");
    out.emplace_back(item);
  }
  return out;
}

ApiTokens ApiTokens::load(const std::string& file_path, const std::string& list) {
  std::vector<std::string> tokens = parse_list(list, "--api-tokens");
  if (!file_path.empty()) {
    std::ifstream in(file_path);
    if (!in) throw ConfigError("--api-tokens-file: cannot read " + file_path);
    std::ostringstream text;
    text << in.rdbuf();
    auto from_file = parse_file_text(text.str(), file_path);
    if (from_file.empty())
      throw ConfigError("--api-tokens-file: " + file_path + " holds no token (one per line; # starts a comment)");
    tokens.insert(tokens.end(), from_file.begin(), from_file.end());
  }
  return of(tokens);
}

ApiTokens ApiTokens::of(const std::vector<std::string>& tokens) {
  ApiTokens out;
  for (const auto& t : tokens) out.digests_.push_back(sha256(t));
  return out;
}

bool ApiTokens::accepts(std::string_view token) const {
  Digest presented = sha256(token);
  bool match = false;
  for (const Digest& d : digests_) match |= constant_time_equal(presented, d);  // no early exit
  return match && !token.empty();
}

std::optional<std::string> bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size()) return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return std::nullopt;
  if (authorization[scheme.size()] != ' ') return std::nullopt;
  std::string_view token = trim(authorization.substr(scheme.size() + 1));
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

std::string token_key(std::string_view token) { return "token:" + to_hex(sha256(token)).substr(0, 32); }

}  // namespace feedpipe
