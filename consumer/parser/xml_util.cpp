#include "consumer/parser/xml_util.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
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
  // Undeclared inline markup inherits the feed's own default namespace: that is HTML too.
  bool html = uri.empty() || uri == ns::xhtml || uri == ns::atom10 || uri == ns::atom03 ||
              uri == ns::rss10 || uri == ns::rss090 || uri == ns::userland;
  if (!html) {
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
    out += " />";  // "<br />", as HTML-compatible XHTML (and feedparser) writes it
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
    for (pugi::xml_attribute a = n.first_attribute(); a; a = a.next_attribute()) {
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

bool declares_namespace(pugi::xml_node node) {
  for (pugi::xml_attribute a = node.first_attribute(); a; a = a.next_attribute())
    if (std::strncmp(a.name(), "xmlns", 5) == 0) return true;
  return false;
}

ChildNamespaces& children_namespaces(pugi::xml_node element, ChildNamespaces& shared, ChildNamespaces& own) {
  if (!declares_namespace(element)) return shared;
  own = ChildNamespaces();
  return own;
}

std::string_view ChildNamespaces::of(pugi::xml_node child) {
  if (declares_namespace(child)) return namespace_of(child);
  std::string_view prefix = prefix_of(child.name());
  for (int i = 0; i < size_; ++i)
    if (memo_[i].prefix == prefix) return memo_[i].uri;
  std::string_view uri = namespace_of(child);
  if (size_ < 8) memo_[size_++] = {prefix, uri};
  return uri;
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

namespace {

bool is_text(pugi::xml_node node) {
  pugi::xml_node_type type = node.type();
  return type == pugi::node_pcdata || type == pugi::node_cdata;
}

}  // namespace

std::string text(pugi::xml_node node) {
  pugi::xml_node first = node.first_child();
  if (first && !first.next_sibling() && is_text(first)) return std::string(trim_view(first.value()));
  std::string out;
  for (pugi::xml_node c = first; c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) {
      out = inner_markup(node);
      break;
    }
    if (is_text(c)) out += c.value();
  }
  trim_in_place(out);
  return out;
}

std::string all_text(pugi::xml_node node) {
  std::string scratch;
  std::string_view t = all_text_view(node, scratch);
  if (t.data() == scratch.data() && t.size() == scratch.size()) return scratch;
  return std::string(t);
}

std::string_view all_text_view(pugi::xml_node node, std::string& scratch) {
  pugi::xml_node first = node.first_child();
  if (!first) return {};
  if (!first.next_sibling() && is_text(first)) return trim_view(first.value());
  scratch.clear();
  collect_text(scratch, node);
  trim_in_place(scratch);
  return scratch;
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
  for (auto it = bases.rbegin(); it != bases.rend(); ++it) base = resolve_ref(base, trim(*it));
  return base;
}

std::string resolve(pugi::xml_node node, std::string_view document_base, std::string_view ref) {
  std::string r = trim(ref);
  if (r.empty() || has_scheme(r)) return r;  // absolute: resolve_url() would return it as it is
  return resolve_ref(base_url(node, document_base), r);
}

namespace {

// Attributes that hold a URL (feedparser's list of relative URI attributes, by attribute).
bool is_url_attribute(std::string_view name) {
  static constexpr std::string_view kNames[] = {"href",     "src",    "cite",   "longdesc", "usemap",
                                                "codebase", "data",   "poster", "background",
                                                "action",   "classid", "profile"};
  for (auto n : kNames)
    if (name.size() == n.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return a == (b >= 'A' && b <= 'Z' ? b + 32 : b);
        }))
      return true;
  return false;
}

bool is_plain_url_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-._~/%!$&'()*+,;=:@?#", c) != nullptr;
}

// No port, or one libcurl writes back as it is: digits without a leading zero, up to 65535.
bool plain_port(std::string_view authority) {
  size_t colon = authority.find(':');
  if (colon == std::string_view::npos) return true;
  std::string_view port = authority.substr(colon + 1);
  if (colon == 0 || port.empty() || port.size() > 5 || port[0] == '0') return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// The plain relative path `ref` resolved against the plain base, or "" when either is not
// plain enough for the result to be obvious (dot segments, odd ports, user info, odd characters).
std::string fast_resolve(std::string_view base, std::string_view ref) {
  if (ref.empty() || ref[0] == '?' || ref[0] == '#' || ref.substr(0, 2) == "//") return "";
  size_t scheme_end;
  if (base.substr(0, 7) == "http://") scheme_end = 7;
  else if (base.substr(0, 8) == "https://") scheme_end = 8;
  else return "";
  for (char c : base)
    if (!is_plain_url_char(c)) return "";
  size_t path_start = base.find_first_of("/?#", scheme_end);
  std::string_view authority = base.substr(scheme_end, path_start == std::string_view::npos ? path_start : path_start - scheme_end);
  if (authority.empty() || authority.find_first_of("@%") != std::string_view::npos) return "";
  if (!plain_port(authority)) return "";
  for (char c : authority)
    if (std::isupper(static_cast<unsigned char>(c))) return "";
  std::string_view path;
  if (path_start != std::string_view::npos && base[path_start] == '/') {
    size_t path_end = base.find_first_of("?#", path_start);
    path = base.substr(path_start, path_end == std::string_view::npos ? path_end : path_end - path_start);
  }
  // No dot segment anywhere, in the base path or in the reference's path.
  auto has_dot_segment = [](std::string_view p) {
    size_t end = p.find_first_of("?#");
    p = p.substr(0, end);
    size_t i = 0;
    while (i <= p.size()) {
      size_t slash = p.find('/', i);
      std::string_view seg = p.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i);
      if (seg == "." || seg == "..") return true;
      if (slash == std::string_view::npos) break;
      i = slash + 1;
    }
    return false;
  };
  for (char c : ref)
    if (!is_plain_url_char(c)) return "";
  if (size_t colon = ref.find(':'); colon != std::string_view::npos && colon < ref.find_first_of("/?#"))
    return "";  // "c:x" might be read as a scheme
  if (has_dot_segment(path) || has_dot_segment(ref)) return "";
  std::string out(base.substr(0, scheme_end + authority.size()));
  if (ref[0] == '/') {
    out += ref;
  } else {
    size_t last = path.rfind('/');
    if (last == std::string_view::npos) out += '/';
    else out += path.substr(0, last + 1);
    out += ref;
  }
  return out;
}

}  // namespace

std::string resolve_ref(std::string_view base, std::string_view ref) {
  if (base.empty() || has_scheme(ref)) return std::string(ref);
  if (std::string fast = fast_resolve(base, ref); !fast.empty()) return fast;
  return resolve_url(base, ref);
}

bool has_scheme(std::string_view url) {
  size_t i = 0;
  while (i < url.size() && (std::isalnum(static_cast<unsigned char>(url[i])) || url[i] == '+' ||
                            url[i] == '-' || url[i] == '.'))
    ++i;
  return i > 1 && i < url.size() && url[i] == ':' && std::isalpha(static_cast<unsigned char>(url[0]));
}

// "&#146;" -> "&#x2019;": HTML reads references to C1 controls as windows-1252.
void demoronize_references(std::string& html) {
  for (size_t amp = html.find("&#"); amp != std::string::npos; amp = html.find("&#", amp + 2)) {
    size_t k = amp + 2;
    bool hex = k < html.size() && (html[k] == 'x' || html[k] == 'X');
    if (hex) ++k;
    size_t start = k;
    unsigned value = 0;
    while (k < html.size() && k - start < 4 && std::isxdigit(static_cast<unsigned char>(html[k]))) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(html[k])));
      if (!hex && !std::isdigit(static_cast<unsigned char>(c))) break;
      value = value * (hex ? 16 : 10) + static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10);
      ++k;
    }
    if (k == start || k >= html.size() || html[k] != ';' || value < 0x80 || value > 0x9F) continue;
    char buf[16];
    std::snprintf(buf, sizeof buf, "&#x%X;", static_cast<unsigned>(demoronize(value)));
    html.replace(amp, k + 1 - amp, buf);
  }
}

std::string resolve_html(pugi::xml_node node, std::string_view document_base, std::string html) {
  if (html.find("&#") != std::string::npos) demoronize_references(html);
  if (html.find('<') == std::string::npos) return html;
  std::string base = base_url(node, document_base);
  if (base.empty() && html.find("/>") == std::string::npos) return html;
  std::string out;
  out.reserve(html.size() + 64);
  size_t i = 0;
  while (i < html.size()) {
    size_t lt = html.find('<', i);
    if (lt == std::string::npos || lt + 1 >= html.size() ||
        !std::isalpha(static_cast<unsigned char>(html[lt + 1]))) {
      size_t stop = lt == std::string::npos ? html.size() : lt + 1;
      out.append(html, i, stop - i);
      i = stop;
      continue;
    }
    out.append(html, i, lt - i);
    // Inside a start tag: copy it attribute by attribute, rewriting URL values.
    size_t j = lt + 1;
    while (j < html.size() && html[j] != '>') {
      if (!std::isalpha(static_cast<unsigned char>(html[j]))) {
        ++j;
        continue;
      }
      size_t name_start = j;
      while (j < html.size() && (std::isalnum(static_cast<unsigned char>(html[j])) || html[j] == '-' ||
                                 html[j] == ':' || html[j] == '_'))
        ++j;
      std::string_view name(html.data() + name_start, j - name_start);
      size_t k = j;
      while (k < html.size() && std::isspace(static_cast<unsigned char>(html[k]))) ++k;
      if (k >= html.size() || html[k] != '=') continue;
      ++k;
      while (k < html.size() && std::isspace(static_cast<unsigned char>(html[k]))) ++k;
      if (k >= html.size()) break;
      size_t value_start, value_end;
      if (html[k] == '"' || html[k] == '\'') {
        value_start = k + 1;
        value_end = html.find(html[k], value_start);
        if (value_end == std::string::npos) break;
        j = value_end + 1;
      } else {
        value_start = k;
        value_end = k;
        while (value_end < html.size() && !std::isspace(static_cast<unsigned char>(html[value_end])) &&
               html[value_end] != '>')
          ++value_end;
        j = value_end;
      }
      if (!base.empty() && name_start > lt + 1 && is_url_attribute(name)) {
        std::string value = trim(std::string_view(html).substr(value_start, value_end - value_start));
        if (!has_scheme(value) && value.rfind("#", 0) != 0) {
          out.append(html, lt, value_start - lt);
          out += resolve_ref(base, value);
          lt = value_end;  // copy on from the end of the value
        } else if (value.size() != value_end - value_start) {
          out.append(html, lt, value_start - lt);
          out += value;
          lt = value_end;
        }
      }
    }
    if (j < html.size() && j >= lt + 2 && html[j - 1] == '/' &&
        !std::isspace(static_cast<unsigned char>(html[j - 2]))) {
      // "<br/>" written "<br />", as feedparser (and XHTML's HTML compatibility) writes it
      out.append(html, lt, j - 1 - lt);
      out += " />";
    } else {
      out.append(html, lt, std::min(j + 1, html.size()) - lt);
    }
    i = std::min(j + 1, html.size());
  }
  return out;
}

}  // namespace feedpipe::parser::xml
