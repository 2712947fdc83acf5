#pragma once
// Date parsing for feeds: RFC 822/1123 (pubDate) and RFC 3339/W3CDTF (Atom, dc:date, JSON Feed),
// including the broken variants seen in the wild. Internal to the parser.
#include <string>
#include <string_view>

namespace feedpipe::parser {

// Returns the instant as RFC 3339 UTC ("2024-01-02T03:04:05Z", fractions dropped), or "" when the
// text is not a date we can read with confidence. A missing zone is taken as UTC.
std::string parse_date(std::string_view text);

}  // namespace feedpipe::parser
