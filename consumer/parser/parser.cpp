#include "consumer/parser/parser.h"

#include <pugixml.hpp>

#include <exception>

#include "consumer/parser/encoding.h"
#include "consumer/parser/formats.h"
#include "consumer/parser/recovery.h"
#include "consumer/parser/xml_util.h"

namespace feedpipe::parser {
namespace {

ParseResult failure(std::string message) {
  ParseResult r;
  r.error = std::move(message);
  return r;
}

std::string position(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

const char* reason(pugi::xml_parse_status status) {
  switch (status) {
    case pugi::status_out_of_memory: return "out of memory";
    case pugi::status_unrecognized_tag: return "unrecognized tag";
    case pugi::status_bad_pi: return "malformed processing instruction or XML declaration";
    case pugi::status_bad_comment: return "malformed comment";
    case pugi::status_bad_cdata: return "malformed CDATA section";
    case pugi::status_bad_doctype: return "malformed DOCTYPE";
    case pugi::status_bad_pcdata: return "malformed character data";
    case pugi::status_bad_start_element: return "malformed start tag";
    case pugi::status_bad_attribute: return "malformed attribute";
    case pugi::status_bad_end_element: return "malformed end tag";
    case pugi::status_end_element_mismatch: return "mismatched end tag";
    case pugi::status_no_document_element: return "no root element";
    default: return "malformed document";
  }
}

// The name of the first start tag, skipping the prolog; "" if there is none.
std::string first_element_name(std::string_view xml) {
  for (size_t i = xml.find('<'); i != std::string_view::npos; i = xml.find('<', i + 1)) {
    if (i + 1 >= xml.size()) break;
    char c = xml[i + 1];
    if (c == '?' || c == '!' || c == '/') continue;
    size_t end = xml.find_first_of(" \t\r\n/>", i + 1);
    return std::string(xml.substr(i + 1, end == std::string_view::npos ? end : end - i - 1));
  }
  return "";
}

bool is_feed_root(std::string_view qualified) {
  auto colon = qualified.find(':');
  std::string_view local = colon == std::string_view::npos ? qualified : qualified.substr(colon + 1);
  return local == "rss" || local == "feed" || local == "RDF";
}

pugi::xml_parse_result load(pugi::xml_document& doc, const std::string& xml) {
  // No parse_doctype: the DOCTYPE is skipped, and pugixml expands no entity it declares.
  return doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_declaration,
                         pugi::encoding_utf8);
}

// Walks the tree with pugixml's own traversal (no recursion, and one call per node instead of
// several accessor calls into the shared library): nothing may recurse before the depth is
// known to be sane.
class DepthCheck : public pugi::xml_tree_walker {
 public:
  explicit DepthCheck(int max_depth) : max_depth_(max_depth) {}
  bool for_each(pugi::xml_node& n) override {
    // depth() is 0 for the document's children, so the root element's depth is 1.
    if (depth() >= max_depth_ && n.type() == pugi::node_element) {
      offending_ = n;
      return false;
    }
    return true;
  }
  pugi::xml_node offending() const { return offending_; }

 private:
  int max_depth_;
  pugi::xml_node offending_;
};

// The offset of the first element nested deeper than max_depth, or -1.
ptrdiff_t too_deep(pugi::xml_document& doc, int max_depth) {
  DepthCheck walker(max_depth);
  if (doc.traverse(walker)) return -1;
  return walker.offending().offset_debug();
}

std::string depth_error(std::string_view xml, ptrdiff_t offset, int max_depth) {
  return "XML nesting deeper than " + std::to_string(max_depth) + " elements at " +
         position(xml, static_cast<size_t>(offset));
}

ParseResult parse_xml(std::string_view text, const ParseOptions& options) {
  if (std::string bomb = check_entity_declarations(text); !bomb.empty()) return failure(bomb);
  std::string xml = normalize_references(text);
  pugi::xml_document doc;
  // Parsed in place: the tree points into `xml`, which pugixml rewrites as it goes (no copy
  // of the document). Where an error needs the text as it was, it is made again.
  pugi::xml_parse_result parsed = doc.load_buffer_inplace(
      xml.data(), xml.size(), pugi::parse_default | pugi::parse_declaration, pugi::encoding_utf8);
  bool rewritten = true;
  if (!parsed) {
    // Again from a copy, as before: the error offsets pugixml reports at the end of a buffer
    // differ between the two.
    xml = normalize_references(text);
    parsed = load(doc, xml);
    rewritten = false;
  }
  if (!parsed) {
    // Report where the document as sent went wrong, even if the repaired one fails elsewhere.
    std::string error = "XML parse error at " + position(xml, static_cast<size_t>(parsed.offset)) +
                        ": " + reason(parsed.status);
    std::string repaired = repair_markup(xml);
    if (!load(doc, repaired) || !doc.document_element()) {
      // An HTML page that even repair can't read is still, first of all, not a feed.
      std::string root = first_element_name(xml);
      if (!root.empty() && !is_feed_root(root)) return failure("not a feed: root element <" + root + ">");
      return failure(error);
    }
    xml = std::move(repaired);
  }
  if (ptrdiff_t deep = too_deep(doc, options.max_depth); deep >= 0)
    return failure(depth_error(rewritten ? normalize_references(text) : xml, deep, options.max_depth));

  pugi::xml_node root = doc.document_element();
  std::string_view name = xml::local_name(root);
  std::string_view uri = xml::namespace_of(root);
  Feed feed;
  if (name == "rss") feed = read_rss(root, options);
  else if (name == "RDF" && (uri == xml::ns::rdf || uri.empty())) feed = read_rdf(root, options);
  else if (name == "feed")  // Atom 1.0, 0.3, none, or a namespace of its own: read as Atom
    feed = read_atom(root, options);
  else return failure("not a feed: root element <" + std::string(root.name()) + ">");
  ParseResult result;
  result.feed = std::move(feed);
  return result;
}

}  // namespace

ParseResult parse_feed(std::string_view document, const ParseOptions& options) {
  try {
    std::string storage;
    std::string_view text = to_utf8(document, options.http_charset, storage);
    size_t start = text.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) return failure("not a feed: empty document");
    if (text[start] == '{' || text[start] == '[') return read_json_feed(text, options);
    if (text[start] != '<') return failure("not a feed: neither XML nor JSON");
    return parse_xml(text, options);
  } catch (const std::exception& e) {
    return failure(std::string("parse failed: ") + e.what());
  }
}

nlohmann::json to_json(const Feed& feed) {
  nlohmann::json out = nlohmann::json::object();
  auto put = [](nlohmann::json& object, const char* key, const std::string& value) {
    if (!value.empty()) object[key] = value;
  };
  put(out, "format", feed.format);
  put(out, "title", feed.title);
  put(out, "link", feed.link);
  nlohmann::json items = nlohmann::json::array();
  for (const Item& item : feed.items) {
    nlohmann::json i = nlohmann::json::object();
    put(i, "guid", item.guid);
    put(i, "link", item.link);
    put(i, "title", item.title);
    put(i, "author", item.author);
    put(i, "published", item.published);
    put(i, "updated", item.updated);
    put(i, "summary", item.summary);
    put(i, "content", item.content);
    items.push_back(std::move(i));
  }
  out["items"] = std::move(items);
  return out;
}

}  // namespace feedpipe::parser
