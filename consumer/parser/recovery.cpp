#include "consumer/parser/recovery.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "consumer/parser/text.h"

namespace feedpipe::parser {
namespace {

// ASCII tests written out (std::isalpha is a call per character, and these run on every
// reference of the document).
bool is_ascii_alpha(char c) { return static_cast<unsigned char>((c | 0x20) - 'a') < 26; }
bool is_ascii_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }
bool is_ascii_xdigit(char c) { return is_ascii_digit(c) || static_cast<unsigned char>((c | 0x20) - 'a') < 6; }

bool is_name_start(char c) {
  return is_ascii_alpha(c) || c == '_' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) {
  return is_name_start(c) || is_ascii_digit(c) || c == '-' || c == '.';
}

// The end (one past) of a DOCTYPE declaration starting at `i`, brackets of its internal subset
// and quoted strings included.
size_t doctype_end(std::string_view s, size_t i) {
  int brackets = 0;
  char quote = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[') {
      ++brackets;
    } else if (c == ']') {
      --brackets;
    } else if (c == '>' && brackets <= 0) {
      return i + 1;
    }
  }
  return s.size();
}

// When markup that must be copied verbatim starts at `i` (CDATA, comment, PI, DOCTYPE),
// returns its end; otherwise returns `i`.
size_t skip_opaque(std::string_view s, size_t i) {
  auto until = [&](std::string_view close) {
    size_t end = s.find(close, i);
    return end == std::string_view::npos ? s.size() : end + close.size();
  };
  std::string_view rest = s.substr(i);
  if (rest.substr(0, 9) == "<![CDATA[") return until("]]>");
  if (rest.substr(0, 4) == "<!--") return until("-->");
  if (rest.substr(0, 2) == "<?") return until("?>");
  if (rest.substr(0, 2) == "<!") return doctype_end(s, i);
  return i;
}

// The end of a tag starting at `i` (one past its '>'), quotes respected, or npos.
size_t tag_end(std::string_view s, size_t i) {
  char quote = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      return i + 1;
    } else if (c == '<') {
      return std::string_view::npos;  // a tag that never ended
    }
  }
  return std::string_view::npos;
}

}  // namespace

namespace {

// s.find("<!DOCTYPE"), without a memchr call and a comparison for every '<' before it: only a
// "<!" (found sixteen bytes at a time) is compared.
size_t find_doctype(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size(), i = 0;
  for (;;) {
#if defined(__SSE2__)
    const __m128i lt = _mm_set1_epi8('<'), bang = _mm_set1_epi8('!');
    while (i + 17 <= n) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
      auto mask = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(w, bang))));
      if (mask) {
        i += static_cast<size_t>(__builtin_ctz(mask));
        break;
      }
      i += 16;
    }
#endif
    while (i + 1 < n && !(p[i] == '<' && p[i + 1] == '!')) ++i;
    if (i + 1 >= n) return std::string_view::npos;
    if (s.substr(i, 9) == "<!DOCTYPE") return i;
    ++i;
  }
}

// The internal general entities of the DOCTYPE, name -> literal value; empty when none.
std::vector<std::pair<std::string_view, std::string_view>> declared_entities(std::string_view s) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  size_t start = find_doctype(s.substr(0, 4096));  // only ever in the prolog
  if (start == std::string_view::npos) return out;
  std::string_view doctype = s.substr(start, doctype_end(s, start) - start);
  for (size_t pos = doctype.find("<!ENTITY"); pos != std::string_view::npos;
       pos = doctype.find("<!ENTITY", pos + 1)) {
    size_t n = pos + 8;
    while (n < doctype.size() && std::isspace(static_cast<unsigned char>(doctype[n]))) ++n;
    if (n >= doctype.size() || doctype[n] == '%') continue;  // a parameter entity
    size_t name_end = n;
    while (name_end < doctype.size() && is_name_char(doctype[name_end])) ++name_end;
    size_t q = name_end;
    while (q < doctype.size() && std::isspace(static_cast<unsigned char>(doctype[q]))) ++q;
    if (q >= doctype.size() || (doctype[q] != '"' && doctype[q] != '\'')) continue;  // external
    size_t qend = doctype.find(doctype[q], q + 1);
    if (qend == std::string_view::npos) break;
    out.emplace_back(doctype.substr(n, name_end - n), doctype.substr(q + 1, qend - q - 1));
  }
  return out;
}

}  // namespace

namespace {

// The first '&', or '<' followed by '!' or '?', at or after `i`; s.size() if none. Sixteen
// bytes at a time: most of a document is neither.
size_t next_reference_or_opaque(std::string_view s, size_t i) {
  const char* p = s.data();
  size_t n = s.size();
#if defined(__SSE2__)
  const __m128i amp = _mm_set1_epi8('&'), lt = _mm_set1_epi8('<');
  const __m128i bang = _mm_set1_epi8('!'), question = _mm_set1_epi8('?');
  while (i + 17 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    __m128i opens = _mm_and_si128(_mm_cmpeq_epi8(v, lt),
                                  _mm_or_si128(_mm_cmpeq_epi8(w, bang), _mm_cmpeq_epi8(w, question)));
    auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, amp), opens)));
    if (mask) return i + static_cast<size_t>(__builtin_ctz(mask));
    i += 16;
  }
#endif
  for (; i < n; ++i) {
    if (p[i] == '&') return i;
    if (p[i] == '<' && i + 1 < n && (p[i + 1] == '!' || p[i + 1] == '?')) return i;
  }
  return n;
}

}  // namespace

std::string normalize_references(std::string_view s) {
  const auto entities = declared_entities(s);
  size_t expansion_budget = std::max<size_t>(s.size(), 1 << 20);
  std::string out;
  out.reserve(s.size() + s.size() / 16);
  size_t i = 0;
  while (i < s.size()) {
    // Copy up to the next reference or opaque section ("<!", "<?": CDATA, comment, DOCTYPE,
    // PI, copied as they are) at once.
    size_t next = next_reference_or_opaque(s, i);
    out.append(s.data() + i, next - i);
    i = next;
    if (i >= s.size()) break;
    if (s[i] == '<') {
      // In a run of '<' only every other one was ever looked at ("<<!" is text, "<<<!" is
      // not): the rule of the scan this replaced, kept so that the output stays the same.
      size_t run = 0;
      while (run < i && s[i - run - 1] == '<') ++run;
      if (run % 2) {
        out += '<';
        ++i;
        continue;
      }
      size_t end = skip_opaque(s, i);
      if (end == i) end = i + 1;
      out.append(s.data() + i, end - i);
      i = end;
      continue;
    }
    size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      ++j;
      bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
      if (hex) ++j;
      size_t start = j;
      while (j < s.size() && (hex ? is_ascii_xdigit(s[j]) : is_ascii_digit(s[j])))
        ++j;
      if (j > start && j < s.size() && s[j] == ';') {
        // References to what XML forbids (NUL, most controls, surrogates, beyond U+10FFFF)
        // would reach the output as invalid text: drop controls, replace the rest.
        unsigned long cp = 0;
        for (size_t k = start; k < j; ++k) {
          char d = static_cast<char>(std::tolower(static_cast<unsigned char>(s[k])));
          cp = std::min(cp * (hex ? 16 : 10) + static_cast<unsigned long>(d <= '9' ? d - '0' : d - 'a' + 10),
                        0x110000ul);
        }
        if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') {
          // dropped
        } else if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
          out += "&#65533;";
        } else if ((cp >= 0x80 && cp <= 0x9F) || s[i + 2] == 'X') {
          // "&#146;" meant windows-1252's quote; "&#X41;" is HTML's, not XML's, spelling.
          out += "&#" + std::to_string(static_cast<unsigned long>(demoronize(static_cast<char32_t>(cp)))) + ";";
        } else {
          out.append(s.substr(i, j + 1 - i));
        }
        i = j + 1;
        continue;
      }
    } else if (j < s.size() && is_name_start(s[j])) {
      while (j < s.size() && is_name_char(s[j])) ++j;
      if (j < s.size() && s[j] == ';') {
        std::string_view name = s.substr(i + 1, j - i - 1);
        if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") {
          out.append(s.substr(i, j + 1 - i));
          i = j + 1;
          continue;
        }
        auto declared = std::find_if(entities.begin(), entities.end(),
                                     [&](const auto& e) { return e.first == name; });
        if (declared != entities.end() && declared->second.size() <= expansion_budget &&
            declared->second.find_first_of("&<") == std::string_view::npos) {
          expansion_budget -= declared->second.size();
          out.append(declared->second);
          i = j + 1;
          continue;
        }
        if (auto cp = html_entity(name)) {
          out += "&#" + std::to_string(static_cast<unsigned long>(*cp)) + ";";
          i = j + 1;
          continue;
        }
      }
    }
    out += "&amp;";
    ++i;
  }
  return out;
}

std::string repair_markup(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 64);
  std::vector<std::string_view> open;
  bool root_seen = false;
  size_t i = 0;
  while (i < s.size()) {
    if (root_seen && open.empty()) break;  // trailing garbage after the root element
    char c = s[i];
    if (c != '<') {
      out += c;
      ++i;
      continue;
    }
    if (size_t end = skip_opaque(s, i); end > i) {
      out.append(s.substr(i, end - i));
      if (s.substr(i, 9) == "<![CDATA[" && s.substr(end - 3, 3) != "]]>") out += "]]>";
      i = end;
      continue;
    }
    bool closing = i + 1 < s.size() && s[i + 1] == '/';
    size_t name_start = i + (closing ? 2 : 1);
    if (name_start >= s.size() || !is_name_start(s[name_start])) {
      out += "&lt;";  // a '<' in text, like "a < b"
      ++i;
      continue;
    }
    size_t name_end = name_start;
    while (name_end < s.size() && is_name_char(s[name_end])) ++name_end;
    std::string_view name = s.substr(name_start, name_end - name_start);
    size_t end = tag_end(s, name_end);
    if (end == std::string_view::npos) {
      // An unterminated tag: drop it and continue after it.
      size_t next = s.find('<', name_end);
      i = next == std::string_view::npos ? s.size() : next;
      continue;
    }
    if (closing) {
      size_t k = open.size();
      while (k > 0 && open[k - 1] != name) --k;
      if (k > 0) {  // closes an open element, and whatever was left open inside it
        while (open.size() >= k) {
          out += "</";
          out += open.back();
          out += '>';
          open.pop_back();
        }
      }
    } else {
      out.append(s.substr(i, end - i));
      bool self_closing = s[end - 2] == '/';
      if (!self_closing) open.push_back(name);
      root_seen = true;
    }
    i = end;
  }
  while (!open.empty()) {
    out += "</";
    out += open.back();
    out += '>';
    open.pop_back();
  }
  return out;
}

std::string check_entity_declarations(std::string_view s) {
  // The DOCTYPE can only come before the root element; skip the prolog to find it.
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view rest = s.substr(i);
    if (rest.substr(0, 4) == "<!--" || rest.substr(0, 2) == "<?") {
      i = skip_opaque(s, i);
      continue;
    }
    if (rest.substr(0, 9) != "<!DOCTYPE" && rest.substr(0, 9) != "<!doctype") return "";
    break;
  }
  std::string_view doctype = s.substr(i, doctype_end(s, i) - i);
  for (size_t pos = doctype.find("<!ENTITY"); pos != std::string_view::npos;
       pos = doctype.find("<!ENTITY", pos + 1)) {
    size_t q = doctype.find_first_of("\"'>", pos);
    if (q == std::string_view::npos || doctype[q] == '>') continue;  // external: never fetched
    size_t qend = doctype.find(doctype[q], q + 1);
    std::string_view value = doctype.substr(q + 1, qend == std::string_view::npos ? qend : qend - q - 1);
    for (size_t r = value.find_first_of("&%"); r != std::string_view::npos;
         r = value.find_first_of("&%", r + 1)) {
      if (r + 1 < value.size() && is_name_start(value[r + 1])) {
        std::string_view decl = doctype.substr(pos + 8, q - pos - 8);
        std::string name = trim(decl);
        return "entity declaration '" + name +
               "' references another entity (entity expansion bombs are refused)";
      }
    }
  }
  return "";
}

}  // namespace feedpipe::parser
