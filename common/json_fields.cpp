#include "common/json_fields.h"

namespace feedpipe {
namespace {

void skip_space(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}

// s[i] is the opening quote: moves i past the closing one.
bool skip_string(std::string_view s, size_t& i, bool* escaped = nullptr) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '"') {
      ++i;
      return true;
    }
    if (s[i] == '\\') {
      if (escaped) *escaped = true;
      ++i;
    }
  }
  return false;
}

// Moves i past one value: a string, an object or array (to its matching bracket), or a literal
// (to the next delimiter).
bool skip_value(std::string_view s, size_t& i) {
  if (i >= s.size()) return false;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        if (!skip_string(s, i)) return false;
        continue;
      }
      ++i;
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return true;
      }
    }
    return false;
  }
  const size_t start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
         s[i] != '\n' && s[i] != '\r')
    ++i;
  return i > start;
}

}  // namespace

bool split_json_object(std::string_view s,
                       const std::function<bool(std::string_view, std::string_view)>& field) {
  size_t i = 0;
  skip_space(s, i);
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  skip_space(s, i);
  bool empty = i < s.size() && s[i] == '}';
  if (empty) ++i;
  while (!empty) {
    skip_space(s, i);
    if (i >= s.size() || s[i] != '"') return false;
    const size_t key_start = i + 1;
    bool escaped = false;
    if (!skip_string(s, i, &escaped) || escaped) return false;
    const std::string_view key = s.substr(key_start, i - 1 - key_start);
    skip_space(s, i);
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    skip_space(s, i);
    const size_t value_start = i;
    if (!skip_value(s, i)) return false;
    if (!field(key, s.substr(value_start, i - value_start))) return false;
    skip_space(s, i);
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i >= s.size() || s[i] != '}') return false;
    ++i;
    break;
  }
  skip_space(s, i);
  return i == s.size();
}

}  // namespace feedpipe
