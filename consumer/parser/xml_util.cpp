#include "consumer/parser/xml_util.h"

#include <cstring>
#include <vector>

#include "common/url.h"
#include "consumer/parser/text.h"

namespace feedpipe::parser::xml {
namespace {

std::string_view prefix_of(std::string_view qualified) {
  auto colon = qualified.find(':');
  return colon == std::string_view::npos ? std::string_view() : qualified.substr(0, colon);
}

// Prefixes that feeds use without declaring them; a lenient reader takes the obvious meaning.
std::string_view well_known_prefix(std::string_view prefix) {
  if (prefix == "dc") return ns::dc;
  if (prefix == "dcterms") return ns::dcterms;
  if (prefix == "content") return ns::content;
  if (prefix == "atom") return ns::atom10;
  if (prefix == "rdf") return ns::rdf;
  if (prefix == "itunes") return ns::itunes;
  return {};
}

// HTML elements that never have content, written self-closed.
bool is_void_element(std::string_view name) {
  static constexpr std::string_view kVoid[] = {"area", "base", "br",   "col",   "embed",
                                                "hr",   "img",  "input", "link", "meta",
                                                "param", "source", "track", "wbr"};
  for (auto v : kVoid)
    if (v == name) return true;
  return false;
}

void escape_into(std::string& out, std::string_view text, bool attribute) {
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += attribute ? ">" : "&gt;"; break;
      case '"': out += attribute ? "&quot;" : "\""; break;
      default: out += c;
    }
  }
}

void serialize(std::string& out, pugi::xml_node node) {
  switch (node.type()) {
    case pugi::node_pcdata:
    case pugi::node_cdata:
      escape_into(out, node.value(), false);
      return;
    case pugi::node_element:
      break;
    default:
      return;  // comments, processing instructions
  }
  std::string_view uri = namespace_of(node);
  if (!uri.empty() && uri != ns::xhtml) {
    // Not HTML (an unknown vocabulary inside Atom xhtml content): keep only what it says.
    for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) serialize(out, c);
    return;
  }
  std::string_view name = local_name(node);
  out += '<';
  out += name;
  for (pugi::xml_attribute a : node.attributes()) {
    std::string_view an = a.name();
    if (an == "xmlns" || an.substr(0, 6) == "xmlns:") continue;
    out += ' ';
    out += an;
    out += "=\"";
    escape_into(out, a.value(), true);
    out += '"';
  }
  if (!node.first_child() && is_void_element(name)) {
    out += "/>";
    return;
  }
  out += '>';
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) serialize(out, c);
  out += "</";
  out += name;
  out += '>';
}

void collect_text(std::string& out, pugi::xml_node node) {
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
    else if (c.type() == pugi::node_element) collect_text(out, c);
  }
}

}  // namespace

std::string_view local_name(pugi::xml_node node) {
  std::string_view name = node.name();
  auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

std::string_view namespace_of(pugi::xml_node node) {
  std::string_view prefix = prefix_of(node.name());
  if (prefix == "xml") return ns::xml;
  for (pugi::xml_node n = node; n.type() == pugi::node_element; n = n.parent()) {
    for (pugi::xml_attribute a : n.attributes()) {
      std::string_view an = a.name();
      if (prefix.empty() ? an == "xmlns"
                         : (an.size() == prefix.size() + 6 && an.substr(0, 6) == "xmlns:" &&
                            an.substr(6) == prefix))
        return a.value();
    }
  }
  if (prefix.empty()) return {};
  std::string_view known = well_known_prefix(prefix);
  // An unknown undeclared prefix stays distinct from every real namespace (and from none).
  return known.empty() ? prefix : known;
}

bool is(pugi::xml_node node, std::string_view ns, std::string_view local) {
  return node.type() == pugi::node_element && local_name(node) == local && namespace_of(node) == ns;
}

pugi::xml_node child(pugi::xml_node parent, std::string_view ns, std::string_view local) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
    if (is(c, ns, local)) return c;
  return {};
}

pugi::xml_attribute attribute(pugi::xml_node node, std::string_view local) {
  for (pugi::xml_attribute a : node.attributes()) {
    std::string_view an = a.name();
    auto colon = an.find(':');
    if ((colon == std::string_view::npos ? an : an.substr(colon + 1)) == local) return a;
  }
  return {};
}

std::string text(pugi::xml_node node) {
  std::string out;
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) return trim(inner_markup(node));
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  }
  return trim(out);
}

std::string all_text(pugi::xml_node node) {
  std::string out;
  collect_text(out, node);
  return trim(out);
}

std::string inner_markup(pugi::xml_node node) {
  std::string out;
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) serialize(out, c);
  return out;
}

std::string base_url(pugi::xml_node node, std::string_view document_base) {
  std::vector<std::string_view> bases;  // innermost first
  for (pugi::xml_node n = node; n.type() == pugi::node_element; n = n.parent())
    if (pugi::xml_attribute a = n.attribute("xml:base")) bases.push_back(a.value());
  std::string base(document_base);
  for (auto it = bases.rbegin(); it != bases.rend(); ++it) base = resolve_url(base, trim(*it));
  return base;
}

std::string resolve(pugi::xml_node node, std::string_view document_base, std::string_view ref) {
  std::string r = trim(ref);
  if (r.empty()) return r;
  return resolve_url(base_url(node, document_base), r);
}

}  // namespace feedpipe::parser::xml
