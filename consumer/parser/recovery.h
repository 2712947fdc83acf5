#pragma once
// Making real-world XML acceptable to pugixml, and refusing hostile XML. Internal to the parser.
// Each function scans the markup and skips CDATA sections, comments, processing instructions
// and the DOCTYPE, so their contents are never touched.
#include <string>
#include <string_view>

namespace feedpipe::parser {

// Rewrites character references so that pugixml decodes every one of them: HTML named entities
// (&nbsp;, which XML does not declare) become numeric references, and an `&` that starts no
// valid reference (a bare ampersand, an unknown name) becomes &amp;. Line structure is kept.
// Entities the DOCTYPE declares with a literal value (`<!ENTITY id "tag:example.com,">`) are
// replaced by it, as an XML parser would (check_entity_declarations() has refused any that
// references another, and the expansion is capped in total), instead of being escaped.
std::string normalize_references(std::string_view xml);

// Repairs what pugixml refused, the way browsers do: a stray `<` in text is escaped, an end tag
// that closes nothing is dropped, one that closes an outer element also closes those left open
// inside it, a truncated document is closed, and anything after the root element is cut.
std::string repair_markup(std::string_view xml);

// Returns an error when the DOCTYPE declares an entity whose value references another entity
// (the "billion laughs" expansion bomb), else "". pugixml expands no DTD entity, but a document
// that tries this is hostile, and is refused as such.
std::string check_entity_declarations(std::string_view xml);

}  // namespace feedpipe::parser
