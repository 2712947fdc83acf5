#pragma once
// Character encodings of fetched documents. Internal to the parser.
#include <string>
#include <string_view>

namespace feedpipe::parser {

// Converts a document to UTF-8 (with glibc iconv). The charset comes from, in order: a byte order
// mark, `http_charset`, the XML declaration; a document that names none and is not valid UTF-8 is
// read as windows-1252. Unknown charsets are read as UTF-8. The result is always valid UTF-8
// (bad sequences become U+FFFD), has no control characters that XML forbids, and its XML
// declaration, if any, says UTF-8.
std::string to_utf8(std::string_view document, std::string_view http_charset);

// The same without a copy of a document that needs no change: the result is then `document`
// itself (its BOM removed; an XML declaration that names UTF-8 in another letter case kept as
// it is), else the text in `storage`.
std::string_view to_utf8(std::string_view document, std::string_view http_charset, std::string& storage);

}  // namespace feedpipe::parser
