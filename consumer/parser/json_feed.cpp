// JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1).
#include "common/url.h"
#include "consumer/parser/dates.h"
#include "consumer/parser/formats.h"
#include "consumer/parser/text.h"

namespace feedpipe::parser {
namespace {

using nlohmann::json;

// A string member, trimmed; "" when absent or of another type. Ids are numbers in some feeds.
std::string get(const json& object, const char* key, bool number_too = false) {
  auto it = object.find(key);
  if (it == object.end()) return {};
  if (it->is_string()) return trim(it->get_ref<const std::string&>());
  if (number_too && it->is_number_integer()) return it->dump();
  return {};
}

// 1.1 has an "authors" array; 1.0 a single "author".
std::string author(const json& item) {
  std::string names;
  if (auto it = item.find("authors"); it != item.end() && it->is_array()) {
    for (const json& a : *it) {
      if (!a.is_object()) continue;
      std::string name = get(a, "name");
      if (name.empty()) continue;
      if (!names.empty()) names += ", ";
      names += name;
    }
  }
  if (names.empty())
    if (auto it = item.find("author"); it != item.end() && it->is_object()) names = get(*it, "name");
  return names;
}

// Byte offset to "line L, column C".
std::string position(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// nlohmann's parser keeps its own stack, but the depth limit is a promise of parse_feed.
std::string check_depth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth)
        return "JSON nesting deeper than " + std::to_string(max_depth) + " levels at " +
               position(text, i);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return "";
}

}  // namespace

ParseResult read_json_feed(std::string_view text, const ParseOptions& options) {
  ParseResult result;
  if (result.error = check_depth(text, options.max_depth); !result.error.empty()) return result;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // nlohmann's message already says "parse error at line L, column C: …"; drop its tag.
    std::string what = e.what();
    auto pos = what.find("] ");
    result.error = "JSON " + (pos == std::string::npos ? what : what.substr(pos + 2));
    return result;
  }
  auto items = doc.is_object() ? doc.find("items") : doc.end();
  bool has_items = doc.is_object() && items != doc.end() && items->is_array();
  if (!doc.is_object() ||
      (get(doc, "version").find("jsonfeed.org") == std::string::npos && !has_items)) {
    result.error = "not a feed: a JSON document that is not a JSON Feed";
    return result;
  }

  auto resolve = [&](std::string_view ref) { return ref.empty() ? std::string() : resolve_url(options.base_url, ref); };
  Feed feed;
  feed.format = "json";
  feed.title = get(doc, "title");
  feed.link = resolve(get(doc, "home_page_url"));
  if (has_items) {
    for (const json& it : *items) {
      if (!it.is_object()) continue;
      Item item;
      item.guid = get(it, "id", /*number_too=*/true);
      item.link = resolve(get(it, "url"));
      if (item.link.empty()) item.link = resolve(get(it, "external_url"));
      item.title = get(it, "title");
      item.author = author(it);
      if (item.author.empty()) item.author = author(doc);  // items inherit the feed's authors
      item.published = parse_date(get(it, "date_published"));
      item.updated = parse_date(get(it, "date_modified"));
      item.summary = get(it, "summary");
      item.content = get(it, "content_html");
      if (item.content.empty()) item.content = get(it, "content_text");
      feed.items.push_back(std::move(item));
    }
  }
  result.feed = std::move(feed);
  return result;
}

}  // namespace feedpipe::parser
