#pragma once
// One reader per format, called by parse_feed() once it has detected the format and parsed the
// document. Each fills the normalized Feed; none fails once the document is well-formed.
#include "consumer/parser/parser.h"

#include <pugixml.hpp>

#include <string_view>

namespace feedpipe::parser {

Feed read_rss(pugi::xml_node rss, const ParseOptions& options);    // <rss> (0.9x, 2.0)
Feed read_rdf(pugi::xml_node rdf, const ParseOptions& options);    // <rdf:RDF> (RSS 1.0, 0.90)
Feed read_atom(pugi::xml_node feed, const ParseOptions& options);  // <feed> (Atom 1.0, 0.3)
ParseResult read_json_feed(std::string_view document, const ParseOptions& options);

}  // namespace feedpipe::parser
