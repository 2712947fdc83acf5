#include "consumer/parser/encoding.h"

#include <iconv.h>
#include <strings.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "consumer/parser/text.h"

namespace feedpipe::parser {
namespace {

std::string normalize_charset(std::string_view name) {
  std::string out;
  for (char c : name)
    if (c != '"' && c != '\'' && !std::isspace(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_utf8_name(const std::string& cs) {
  return cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii";
}

// The encoding="…" value of a leading XML declaration, or "".
std::string_view declared_encoding(std::string_view doc) {
  if (doc.substr(0, 5) != "<?xml") return {};
  std::string_view decl = doc.substr(0, doc.find("?>"));
  auto pos = decl.find("encoding");
  if (pos == std::string_view::npos) return {};
  pos = decl.find_first_of("\"'", pos);
  if (pos == std::string_view::npos) return {};
  auto end = decl.find(decl[pos], pos + 1);
  if (end == std::string_view::npos) return {};
  return decl.substr(pos + 1, end - pos - 1);
}

// Decodes one UTF-8 sequence at `i`; returns its length, or 0 when it is invalid.
size_t utf8_sequence(std::string_view s, size_t i, char32_t& cp) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;  // overlong
  return len;
}

bool is_valid_utf8(std::string_view s) {
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_sequence(s, i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// The index of the first byte at or after `i` that is not printable ASCII or XML white space
// (tab, LF, CR), or n: sixteen bytes at a time.
size_t skip_plain_ascii(const char* p, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i below_space = _mm_set1_epi8(0x20);
  const __m128i tab = _mm_set1_epi8('\t'), lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  while (i + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    // signed compare: bytes >= 0x80 are negative, so "< 0x20" catches them and the controls
    __m128i odd = _mm_cmplt_epi8(v, below_space);
    __m128i space = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, lf)), _mm_cmpeq_epi8(v, cr));
    auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_andnot_si128(space, odd)));
    if (mask) return i + static_cast<size_t>(__builtin_ctz(mask));
    i += 16;
  }
#endif
  for (; i < n; ++i) {
    auto b = static_cast<unsigned char>(p[i]);
    if (b >= 0x80 || (b < 0x20 && b != '\t' && b != '\n' && b != '\r')) return i;
  }
  return n;
}

// True when sanitize_utf8() would change nothing: valid UTF-8 without C0 controls other than
// white space and without C1 controls. Runs of ASCII are checked sixteen bytes at a time.
bool is_clean(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size(), i = 0;
  char32_t cp;
  while (true) {
    i = skip_plain_ascii(p, i, n);
    if (i >= n) return true;
    auto b = static_cast<unsigned char>(p[i]);
    if (b < 0x80) return false;  // a control character
    if ((b & 0xE0) == 0xC0 && i + 1 < n) {  // two bytes (Latin letters): the common case
      auto c = static_cast<unsigned char>(p[i + 1]);
      if (b < 0xC2 || (c & 0xC0) != 0x80 || (b == 0xC2 && c < 0xA0)) return false;  // overlong, C1
      i += 2;
      continue;
    }
    size_t len = utf8_sequence(s, i, cp);
    if (len == 0 || (cp >= 0x80 && cp <= 0x9F)) return false;
    i += len;
  }
}

// Replaces invalid sequences with U+FFFD and drops the C0 controls XML 1.0 forbids, which
// would otherwise make the document ill-formed or end up in stored text.
std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_sequence(s, i, cp);
    if (len == 0) {
      append_utf8(out, 0xFFFD);
      ++i;
      continue;
    }
    if (cp >= 0x80 && cp <= 0x9F) append_utf8(out, demoronize(cp));  // C1 controls: windows-1252 meant
    else if (!(cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')) out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

// Returns false when iconv does not know the charset.
bool convert(std::string_view in, const std::string& charset, std::string& out) {
  iconv_t cd = iconv_open("UTF-8", charset.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return false;
  out.clear();
  out.resize(in.size() * 2 + 16);
  char* inp = const_cast<char*>(in.data());  // iconv's signature; it does not write the input
  size_t inleft = in.size();
  size_t written = 0;
  while (inleft > 0) {
    char* outp = out.data() + written;
    size_t outleft = out.size() - written;
    size_t r = iconv(cd, &inp, &inleft, &outp, &outleft);
    written = out.size() - outleft;
    if (r != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
    } else {
      // An invalid or truncated sequence: mark it and go on with the next byte.
      if (out.size() - written < 8) out.resize(out.size() * 2);
      out.replace(written, 3, "\xEF\xBF\xBD");
      written += 3;
      ++inp;
      --inleft;
    }
  }
  iconv_close(cd);
  out.resize(written);
  return true;
}

// Makes a leading XML declaration say UTF-8, since that is what the text now is.
void rewrite_declaration(std::string& doc) {
  std::string_view enc = declared_encoding(doc);
  if (enc.empty()) return;
  size_t pos = static_cast<size_t>(enc.data() - doc.data());
  doc.replace(pos, enc.size(), "UTF-8");
}

}  // namespace

std::string to_utf8(std::string_view doc, std::string_view http_charset) {
  std::string storage;
  std::string_view text = to_utf8(doc, http_charset, storage);
  if (text.data() == storage.data()) return storage;
  return std::string(text);
}

std::string_view to_utf8(std::string_view doc, std::string_view http_charset, std::string& out) {
  std::string charset;
  auto starts = [&](std::string_view bom) { return doc.substr(0, bom.size()) == bom; };
  using namespace std::string_view_literals;
  if (starts("\xEF\xBB\xBF")) {
    doc.remove_prefix(3);
    charset = "utf-8";
  } else if (starts("\xFF\xFE\0\0"sv)) {
    doc.remove_prefix(4);
    charset = "utf-32le";
  } else if (starts("\0\0\xFE\xFF"sv)) {
    doc.remove_prefix(4);
    charset = "utf-32be";
  } else if (starts("\xFF\xFE")) {
    doc.remove_prefix(2);
    charset = "utf-16le";
  } else if (starts("\xFE\xFF")) {
    doc.remove_prefix(2);
    charset = "utf-16be";
  } else if (starts("<\0?\0"sv)) {
    charset = "utf-16le";
  } else if (starts("\0<\0?"sv)) {
    charset = "utf-16be";
  } else {
    charset = normalize_charset(http_charset);
    if (charset.empty()) charset = normalize_charset(declared_encoding(doc));
  }
  bool named = !charset.empty();
  // Browsers read ISO-8859-1 as windows-1252 (the WHATWG encoding standard), and feeds labelled
  // Latin-1 routinely contain its curly quotes and dashes.
  if (charset == "iso-8859-1" || charset == "latin1" || charset == "iso8859-1" ||
      charset == "l1" || charset == "iso_8859-1")
    charset = "windows-1252";
  // Clean text is valid UTF-8: the usual document is checked once.
  bool read_as_utf8 = !named || is_utf8_name(charset);
  bool clean = read_as_utf8 && is_clean(doc);
  if (!named && !clean && !is_valid_utf8(doc)) charset = "windows-1252";

  if (is_utf8_name(charset) || !convert(doc, charset, out)) {
    if (read_as_utf8 ? clean : is_clean(doc)) {
      // Already what it should be, but for the declaration: when that says UTF-8 in some case
      // (or is absent) the rewrite changes no more than letter case, which nothing reads.
      std::string_view declared = declared_encoding(doc);
      if (declared.empty() || (declared.size() == 5 && strncasecmp(declared.data(), "utf-8", 5) == 0)) return doc;
      out = std::string(doc);
    } else {
      out = sanitize_utf8(doc);
    }
  } else if (!is_clean(out)) {
    out = sanitize_utf8(out);
  }
  rewrite_declaration(out);
  return out;
}

}  // namespace feedpipe::parser
