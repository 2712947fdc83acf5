// Atom 1.0 (RFC 4287) and its predecessor 0.3, which used other names for the dates.
#include <cctype>

#include "consumer/parser/dates.h"
#include "consumer/parser/formats.h"
#include "consumer/parser/text.h"
#include "consumer/parser/xml_util.h"

namespace feedpipe::parser {
namespace {

// The Atom namespace in use: the root's own, so 1.0, 0.3 and namespace-less feeds read alike.
struct Reader {
  std::string_view atom;
  const ParseOptions& options;

  pugi::xml_node child(pugi::xml_node parent, std::string_view local) const {
    return xml::child(parent, atom, local);
  }

  // Picks the alternate link (rel="alternate" or no rel), an HTML one if there are several.
  struct LinkChoice {
    pugi::xml_node html, any;
    void consider(pugi::xml_node c) {
      if (!c.attribute("href")) return;
      std::string_view rel = c.attribute("rel").value();
      if (!rel.empty() && rel != "alternate") return;
      std::string_view type = c.attribute("type").value();
      if (!any) any = c;
      if (!html && (type.empty() || type == "text/html")) html = c;
    }
  };

  std::string resolve_link(const LinkChoice& choice) const {
    pugi::xml_node best = choice.html ? choice.html : choice.any;
    if (!best) return {};
    return xml::resolve(best, options.base_url, best.attribute("href").value());
  }

  std::string link(pugi::xml_node parent) const {
    LinkChoice choice;
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
      if (xml::is(c, atom, "link")) choice.consider(c);
    return resolve_link(choice);
  }

  // One author as one string, as feedparser's `author` and RSS's <author>: "name (email)".
  void add_author(std::string& names, pugi::xml_node author) const {
    std::string name = decode_entities(xml::all_text(child(author, "name")));
    std::string email = decode_entities(xml::all_text(child(author, "email")));
    if (name.empty() && email.empty()) name = xml::all_text(author);  // <author>Jane</author>, seen in the wild
    if (name.empty()) name = email;
    else if (!email.empty()) name += " (" + email + ")";
    if (name.empty()) return;
    if (!names.empty()) names += ", ";
    names += name;
  }

  std::string authors(pugi::xml_node parent) const {
    std::string names;
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
      if (xml::is(c, atom, "author")) add_author(names, c);
    return names;
  }

  // `namespaces`: for the children of `e` (see xml::ChildNamespaces).
  Item entry(pugi::xml_node e, const std::string& feed_author, xml::ChildNamespaces& namespaces) const {
    // One pass over the entry's children: the first of each text element, the last of each
    // date (a repeated date overrides, as in feedparser), every author and link.
    pugi::xml_node id, title, summary, content, source, published, issued, created, updated, modified;
    LinkChoice links;
    std::string author;
    for (pugi::xml_node c = e.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      std::string_view local = xml::local_name(c);
      if (namespaces.of(c) != atom) continue;
      if (local == "id") id = id ? id : c;
      else if (local == "title") title = title ? title : c;
      else if (local == "summary") summary = summary ? summary : c;
      else if (local == "content") content = content ? content : c;
      else if (local == "source") source = source ? source : c;
      else if (local == "link") links.consider(c);
      else if (local == "author") add_author(author, c);
      else if (local == "published") published = c;
      else if (local == "issued") issued = c;    // 0.3
      else if (local == "created") created = c;  // 0.3
      else if (local == "updated") updated = c;
      else if (local == "modified") modified = c;  // 0.3
    }
    std::string scratch;
    auto date = [&](pugi::xml_node n) { return n ? parse_date(xml::all_text_view(n, scratch)) : std::string(); };

    Item out;
    out.guid = xml::all_text(id);
    // An id that is a path ("/2024/01/post") is resolved like a link, as feedparser does, once
    // a base is known; an opaque token ("12345", "right") stays as it is.
    if (out.guid.size() > 1 && out.guid[0] == '/' && out.guid[1] != '/')
      out.guid = xml::resolve(id, options.base_url, out.guid);
    out.link = resolve_link(links);
    // No alternate link: an id that is a URI stands in for it, as in feedparser.
    if (out.link.empty() && xml::has_scheme(out.guid)) out.link = out.guid;
    out.title = atom_text(title, true);
    out.author = std::move(author);
    if (out.author.empty() && source) out.author = authors(source);
    if (out.author.empty()) out.author = feed_author;  // entries inherit the feed's author
    out.published = date(published);
    if (out.published.empty()) out.published = date(issued);
    if (out.published.empty()) out.published = date(created);
    out.updated = date(updated);
    if (out.updated.empty()) out.updated = date(modified);
    out.summary = xml::resolve_html(summary, options.base_url, atom_text(summary, false));
    out.content = xml::resolve_html(content, options.base_url, atom_text(content, false));
    return out;
  }
};

}  // namespace

Feed read_atom(pugi::xml_node root, const ParseOptions& options) {
  Reader reader{xml::namespace_of(root), options};
  Feed feed;
  feed.format = "atom";
  feed.title = atom_text(reader.child(root, "title"), true);
  feed.link = reader.link(root);
  std::string feed_author = reader.authors(root);
  xml::ChildNamespaces children;      // of the root
  xml::ChildNamespaces grandchildren;  // of the entries that declare no namespace
  for (pugi::xml_node c = root.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element || xml::local_name(c) != "entry" || children.of(c) != reader.atom)
      continue;
    xml::ChildNamespaces own;
    feed.items.push_back(reader.entry(c, feed_author, xml::children_namespaces(c, grandchildren, own)));
  }
  return feed;
}

}  // namespace feedpipe::parser
