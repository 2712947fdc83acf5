#include "broadcaster/http_request_parser.h"

#include <algorithm>
#include <cctype>

namespace feedpipe::http1 {
namespace {

bool is_token_char(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Bytes no request-target may hold (RFC 9112 section 3.2): the front writes the target into the
// request it sends the API server, so they would reach it unchecked.
bool is_control_or_space(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// What a field value may not hold (RFC 9110 section 5.5): controls other than horizontal tab.
bool is_forbidden_in_value(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return (u < 0x20 && u != '\t') || u == 0x7f;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

const std::string* RequestHead::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return &v;
  return nullptr;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return percent_decode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

std::vector<std::string> query_params(std::string_view query, std::string_view name) {
  std::vector<std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) {
      out.emplace_back();
      continue;
    }
    out.push_back(percent_decode(pair.substr(eq + 1), true).value_or(""));
  }
  return out;
}

ParseStatus parse_request_head(std::string_view buffer, size_t max_head_bytes, RequestHead& out) {
  // Tolerate leading empty lines (RFC 9112 section 2.2).
  size_t start = 0;
  while (start < buffer.size() && (buffer[start] == '\r' || buffer[start] == '\n')) ++start;
  size_t end = buffer.find("\r\n\r\n", start);
  size_t sep = 4;
  if (end == std::string_view::npos) {
    end = buffer.find("\n\n", start);  // bare LF line ends, leniently
    sep = 2;
  }
  if (end == std::string_view::npos) {
    return buffer.size() > max_head_bytes ? ParseStatus::too_large : ParseStatus::incomplete;
  }
  if (end + sep > max_head_bytes) return ParseStatus::too_large;
  out = RequestHead{};
  out.head_bytes = end + sep;
  std::string_view head = buffer.substr(start, end - start);

  auto next_line = [&head]() {
    size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };

  std::string_view line = next_line();
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1) return ParseStatus::bad_request;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!std::all_of(method.begin(), method.end(), is_token_char)) return ParseStatus::bad_request;
  if (target.empty() || std::any_of(target.begin(), target.end(), is_control_or_space))
    return ParseStatus::bad_request;
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9')
    return ParseStatus::bad_request;
  out.method = method;
  out.target = target;
  out.minor_version = version[7] - '0';
  std::string_view path = target;
  size_t q = target.find('?');
  if (q != std::string_view::npos) {
    path = target.substr(0, q);
    out.query = target.substr(q + 1);
  }
  auto decoded = percent_decode(path, false);
  if (!decoded) return ParseStatus::bad_request;
  out.path = std::move(*decoded);

  while (!head.empty()) {
    line = next_line();
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') return ParseStatus::bad_request;  // obs-fold
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseStatus::bad_request;
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char)) return ParseStatus::bad_request;
    std::string_view value = trim(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), is_forbidden_in_value)) return ParseStatus::bad_request;
    out.headers.emplace_back(std::string(name), std::string(value));
  }
  return ParseStatus::complete;
}

}  // namespace feedpipe::http1
