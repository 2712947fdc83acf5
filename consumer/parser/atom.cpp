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

  // The last of the elements (a repeated date overrides, as in feedparser).
  std::string date(pugi::xml_node parent, std::string_view local) const {
    pugi::xml_node last;
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
      if (xml::is(c, atom, local)) last = c;
    return parse_date(xml::all_text(last));
  }

  // The alternate link (rel="alternate" or no rel), an HTML one if there are several.
  std::string link(pugi::xml_node parent) const {
    pugi::xml_node html, any;
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
      if (!xml::is(c, atom, "link") || !c.attribute("href")) continue;
      std::string_view rel = c.attribute("rel").value();
      if (!rel.empty() && rel != "alternate") continue;
      std::string_view type = c.attribute("type").value();
      if (!any) any = c;
      if (!html && (type.empty() || type == "text/html")) html = c;
    }
    pugi::xml_node best = html ? html : any;
    if (!best) return {};
    return xml::resolve(best, options.base_url, best.attribute("href").value());
  }

  std::string authors(pugi::xml_node parent) const {
    std::string names;
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
      if (!xml::is(c, atom, "author")) continue;
      std::string name = decode_entities(xml::all_text(child(c, "name")));
      std::string email = decode_entities(xml::all_text(child(c, "email")));
      if (name.empty() && email.empty()) name = xml::all_text(c);  // <author>Jane</author>, seen in the wild
      // One string, as feedparser's `author` and RSS's <author>: "name (email)".
      if (name.empty()) name = email;
      else if (!email.empty()) name += " (" + email + ")";
      if (name.empty()) continue;
      if (!names.empty()) names += ", ";
      names += name;
    }
    return names;
  }

  Item entry(pugi::xml_node e, const std::string& feed_author) const {
    Item out;
    out.guid = xml::all_text(child(e, "id"));
    // A relative id is resolved like a link (feedparser does), once a base is known.
    if (!out.guid.empty() && !xml::has_scheme(out.guid))
      out.guid = xml::resolve(child(e, "id"), options.base_url, out.guid);
    out.link = link(e);
    // No alternate link: an id that is a URI stands in for it, as in feedparser.
    if (out.link.empty() && xml::has_scheme(out.guid)) out.link = out.guid;
    out.title = atom_text(child(e, "title"), true);
    out.author = authors(e);
    if (out.author.empty()) out.author = authors(child(e, "source"));
    if (out.author.empty()) out.author = feed_author;  // entries inherit the feed's author
    out.published = date(e, "published");
    if (out.published.empty()) out.published = date(e, "issued");   // 0.3
    if (out.published.empty()) out.published = date(e, "created");  // 0.3
    out.updated = date(e, "updated");
    if (out.updated.empty()) out.updated = date(e, "modified");  // 0.3
    pugi::xml_node summary = child(e, "summary"), content = child(e, "content");
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
  for (pugi::xml_node c = root.first_child(); c; c = c.next_sibling())
    if (xml::is(c, reader.atom, "entry")) feed.items.push_back(reader.entry(c, feed_author));
  return feed;
}

}  // namespace feedpipe::parser
