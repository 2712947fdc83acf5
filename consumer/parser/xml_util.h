#pragma once
// Namespace-aware helpers over pugixml, which itself only knows qualified names. Feeds use
// arbitrary prefixes (and sometimes none, or undeclared ones), so elements are matched by
// namespace URI and local name. Internal to the parser.
#include <pugixml.hpp>

#include <string>
#include <string_view>

namespace feedpipe::parser::xml {

namespace ns {
inline constexpr std::string_view atom10 = "http://www.w3.org/2005/Atom";
inline constexpr std::string_view atom03 = "http://purl.org/atom/ns#";
inline constexpr std::string_view rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
inline constexpr std::string_view rss10 = "http://purl.org/rss/1.0/";
inline constexpr std::string_view rss090 = "http://my.netscape.com/rdf/simple/0.9/";
inline constexpr std::string_view userland = "http://backend.userland.com/rss2";
inline constexpr std::string_view dc = "http://purl.org/dc/elements/1.1/";
inline constexpr std::string_view dcterms = "http://purl.org/dc/terms/";
inline constexpr std::string_view content = "http://purl.org/rss/1.0/modules/content/";
inline constexpr std::string_view itunes = "http://www.itunes.com/dtds/podcast-1.0.dtd";
inline constexpr std::string_view xhtml = "http://www.w3.org/1999/xhtml";
inline constexpr std::string_view xml = "http://www.w3.org/XML/1998/namespace";
}  // namespace ns

std::string_view local_name(pugi::xml_node node);

// The namespace URI of an element, found by walking the xmlns attributes of it and its
// ancestors; an undeclared well-known prefix (dc, content, atom, …) maps to its usual URI.
std::string_view namespace_of(pugi::xml_node node);

bool is(pugi::xml_node node, std::string_view ns, std::string_view local);

// True when the element has an xmlns or xmlns:* attribute.
bool declares_namespace(pugi::xml_node node);

// namespace_of() for the children of one element, remembered per prefix: a child that declares
// no namespace itself has the namespace its prefix has at the parent, the same for all siblings.
// When the parent declares no namespace either, that is also what the prefix means at the
// children of its siblings that declare none: one ChildNamespaces can serve all their children
// (the items of a channel).
class ChildNamespaces {
 public:
  std::string_view of(pugi::xml_node child);

 private:
  struct Entry {
    std::string_view prefix, uri;
  };
  Entry memo_[8];
  int size_ = 0;
};

// The ChildNamespaces to read the children of `element` (an item or entry) with: `shared`, kept
// across the siblings that declare no namespace, else `own`, emptied.
ChildNamespaces& children_namespaces(pugi::xml_node element, ChildNamespaces& shared, ChildNamespaces& own);

// The first child element with that namespace and local name, or an empty node.
pugi::xml_node child(pugi::xml_node parent, std::string_view ns, std::string_view local);

// An attribute by local name, whatever its prefix (xml:base, rdf:about, …).
pugi::xml_attribute attribute(pugi::xml_node node, std::string_view local);

// The element's character data (text and CDATA), trimmed; when the element holds markup
// (HTML pasted unescaped into a description) the markup is serialized instead.
std::string text(pugi::xml_node node);

// All character data below the element, trimmed, markup dropped.
std::string all_text(pugi::xml_node node);

// all_text() without a copy when the element holds a single text node; otherwise the text is
// collected into `scratch`.
std::string_view all_text_view(pugi::xml_node node, std::string& scratch);

// The children of the element serialized as markup, XHTML prefixes dropped.
std::string inner_markup(pugi::xml_node node);

// The base URL in effect at `node`: `document_base` with every xml:base from the root down
// to `node` resolved in turn.
std::string base_url(pugi::xml_node node, std::string_view document_base);

// `ref` resolved against the base in effect at `node`.
std::string resolve(pugi::xml_node node, std::string_view document_base, std::string_view ref);

// resolve_url() (RFC 3986 resolution with libcurl), with a fast path for the common case of a
// plain relative path against a plain http(s) base, which gives the same result.
std::string resolve_ref(std::string_view base, std::string_view ref);

// True for an absolute URI: a scheme (two characters or more, so no drive letter) and a colon.
bool has_scheme(std::string_view url);

// An HTML fragment found at `node` (summary, content) with the relative URLs of its links and
// embedded resources (href, src, cite, …) resolved against the base in effect at `node`, as
// feedparser does (unchanged when no base is known), its character references to C1
// controls (&#146;) written as the windows-1252 characters they meant (&#x2019;), and its
// self-closed tags written with a space ("<br />"), as feedparser writes them.
std::string resolve_html(pugi::xml_node node, std::string_view document_base, std::string html);

}  // namespace feedpipe::parser::xml
