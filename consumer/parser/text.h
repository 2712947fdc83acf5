#pragma once
// Text helpers shared by the format parsers: trimming, HTML entity decoding, UTF-8 output,
// and Atom text constructs. Internal to the parser.
#include <pugixml.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace feedpipe::parser {

// Strips leading and trailing white space (XML's four characters plus the no-break space).
std::string trim(std::string_view text);
std::string_view trim_view(std::string_view text);
void trim_in_place(std::string& text);

// The code point of an HTML 4 named entity (plus &apos;), e.g. "eacute" -> U+00E9.
std::optional<char32_t> html_entity(std::string_view name);

// Decodes named (HTML 4) and numeric character references; anything else is kept as it is.
// For plain-text fields, where feeds often escape twice ("AT&amp;amp;T").
std::string decode_entities(std::string_view text);

void append_utf8(std::string& out, char32_t code_point);

// A C1 control (U+0080..U+009F) read as the windows-1252 character with that byte, which is
// what a feed that contains one meant ("don\u0092t" -> "don\u2019t"); other code points unchanged.
char32_t demoronize(char32_t code_point);

// The value of an Atom text construct (title, summary, content; 0.3 `mode` included):
// text and html give their text, xhtml the markup inside its div. `plain` asks for text
// without markup (titles): html is entity-decoded and xhtml gives only its character data.
std::string atom_text(pugi::xml_node node, bool plain);

}  // namespace feedpipe::parser
