#pragma once
// Parses RSS, RDF, Atom and JSON Feed documents into feedpipe's normalized feed. Pure functions, thread-safe.
//
// parse_feed() never throws: it detects the format from the document itself (root element, or a
// JSON object), converts the text to UTF-8, recovers from the usual ill-formed input where the data
// is still there, and otherwise returns a ParseResult whose `error` says where and why.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace feedpipe::parser {

// empty string = absent; dates RFC 3339 UTC "2024-01-02T03:04:05Z"
struct Item {
  std::string guid, link, title, author, published, updated, summary, content;
};

struct Feed {
  std::string format;  // "rss" | "atom" | "rdf" | "json"
  std::string title, link;
  std::vector<Item> items;
};

struct ParseOptions {
  std::string base_url;      // URL relative links resolve against (the feed's final URL); empty = leave relative
  std::string http_charset;  // charset from the HTTP Content-Type, if any (overrides the XML declaration)
  int max_depth = 256;       // deeper nesting is a parse error
};

struct ParseResult {
  std::optional<Feed> feed;  // set on success
  std::string error;         // on failure: a clear message, with line (and column if known) and reason
  explicit operator bool() const { return feed.has_value(); }
};

ParseResult parse_feed(std::string_view document, const ParseOptions& options = {});

// The normalized feed as DESIGN.md prints it:
// {"format","title","link","items":[{"guid","link","title","author","published","updated","summary","content"}]},
// absent (empty) fields omitted.
nlohmann::json to_json(const Feed& feed);

}  // namespace feedpipe::parser
