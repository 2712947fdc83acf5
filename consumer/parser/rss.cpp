// RSS 0.91, 0.92 and 2.0 (<rss><channel><item>), with the usual namespaced extras.
#include <cctype>
#include <initializer_list>

#include "common/url.h"
#include "consumer/parser/dates.h"
#include "consumer/parser/formats.h"
#include "consumer/parser/text.h"
#include "consumer/parser/xml_util.h"

namespace feedpipe::parser {
namespace {

namespace ns = xml::ns;

// RSS's own elements have no namespace, except in the few feeds that use Userland's.
bool is_rss(pugi::xml_node node, std::string_view local) {
  if (node.type() != pugi::node_element || xml::local_name(node) != local) return false;
  std::string_view uri = xml::namespace_of(node);
  return uri.empty() || uri == ns::userland;
}

pugi::xml_node rss_child(pugi::xml_node parent, std::string_view local) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
    if (is_rss(c, local)) return c;
  return {};
}

// The href of the first <atom:link> with the wanted rel (no rel counts as alternate).
std::string atom_link(pugi::xml_node parent, std::string_view rel) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (!xml::is(c, ns::atom10, "link")) continue;
    std::string_view r = c.attribute("rel").value();
    if (r == rel || (r.empty() && rel == "alternate")) return c.attribute("href").value();
  }
  return {};
}

// The first non-empty <link> (feeds sometimes repeat it, once empty).
std::string rss_link(pugi::xml_node parent) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
    if (is_rss(c, "link"))
      if (std::string link = xml::all_text(c); !link.empty()) return link;
  return {};
}

std::string plain(pugi::xml_node node) { return decode_entities(xml::all_text(node)); }

bool comes_before(pugi::xml_node a, pugi::xml_node b) {
  for (pugi::xml_node n = a; n; n = n.next_sibling())
    if (n == b) return true;
  return false;
}

// The first of the named children that has text.
std::string first_text(std::initializer_list<pugi::xml_node> nodes) {
  for (pugi::xml_node n : nodes)
    if (std::string t = plain(n); !t.empty()) return t;
  return {};
}

Item read_item(pugi::xml_node item, const ParseOptions& options) {
  Item out;
  std::string base = xml::base_url(item, options.base_url);
  auto resolve = [&](std::string_view ref) { return ref.empty() ? std::string() : resolve_url(base, ref); };

  out.title = first_text({rss_child(item, "title"), xml::child(item, ns::dc, "title")});
  out.link = resolve(rss_link(item));
  if (out.link.empty()) out.link = resolve(trim(atom_link(item, "alternate")));

  if (pugi::xml_node guid = rss_child(item, "guid")) {
    out.guid = xml::all_text(guid);
    // isPermaLink defaults to true (feedparser then takes the guid as the link), but many feeds
    // put opaque ids there without saying so: only a URI with a scheme stands in for the link.
    std::string_view permalink = guid.attribute("isPermaLink").value();
    if (out.link.empty() && !out.guid.empty() && permalink != "false" && xml::has_scheme(out.guid))
      out.link = resolve(out.guid);
  }

  out.author = first_text({rss_child(item, "author"), xml::child(item, ns::dc, "creator"),
                                 xml::child(item, ns::dc, "author"), xml::child(item, ns::itunes, "author")});

  auto date = [&](pugi::xml_node n) { return parse_date(xml::all_text(n)); };
  std::string dc_date = date(xml::child(item, ns::dc, "date"));
  out.published = date(rss_child(item, "pubDate"));
  if (out.published.empty()) out.published = date(xml::child(item, ns::dcterms, "issued"));
  if (out.published.empty()) out.published = dc_date;
  out.updated = date(xml::child(item, ns::atom10, "updated"));
  if (out.updated.empty()) out.updated = date(xml::child(item, ns::dcterms, "modified"));
  if (out.updated.empty()) out.updated = date(xml::child(item, ns::dc, "modified"));
  if (out.updated.empty()) out.updated = dc_date;  // feedparser reads dc:date as the update time

  pugi::xml_node summary = rss_child(item, "description");
  if (!summary) summary = xml::child(item, ns::dc, "description");
  // A stray <summary> (Atom's word): with a description too, the first is the summary and the
  // other the content, as feedparser reads them.
  pugi::xml_node other = rss_child(item, "summary");
  if (!summary) std::swap(summary, other);
  else if (other && comes_before(other, summary)) std::swap(summary, other);
  out.summary = xml::resolve_html(summary, options.base_url, xml::text(summary));
  // The full text: content:encoded, else the older xhtml:body, <body> and <fullitem>.
  pugi::xml_node content = xml::child(item, ns::content, "encoded");
  if (!content && other) content = other;
  std::string body;
  if (content) body = xml::text(content);
  else if ((content = xml::child(item, ns::xhtml, "body")) || (content = rss_child(item, "body")))
    body = trim(xml::inner_markup(content));
  else if ((content = rss_child(item, "fullitem")))
    body = xml::text(content);
  out.content = xml::resolve_html(content, options.base_url, std::move(body));
  return out;
}

}  // namespace

Feed read_rss(pugi::xml_node rss, const ParseOptions& options) {
  Feed feed;
  feed.format = "rss";
  pugi::xml_node channel = rss_child(rss, "channel");
  if (!channel) channel = rss;  // a few feeds put the items straight under <rss>
  std::string base = xml::base_url(channel, options.base_url);

  feed.title = first_text({rss_child(channel, "title"), xml::child(channel, ns::dc, "title")});
  std::string link = rss_link(channel);
  if (link.empty()) link = trim(atom_link(channel, "alternate"));
  if (!link.empty()) feed.link = resolve_url(base, link);

  auto add_items = [&](pugi::xml_node parent) {
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
      if (is_rss(c, "item")) feed.items.push_back(read_item(c, options));
  };
  add_items(channel);
  if (channel != rss) add_items(rss);  // items misplaced after </channel>
  return feed;
}

}  // namespace feedpipe::parser
