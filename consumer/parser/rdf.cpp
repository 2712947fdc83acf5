// RSS 1.0 and 0.90: an RDF document whose <item>s are siblings of its <channel>.
#include "common/url.h"
#include "consumer/parser/dates.h"
#include "consumer/parser/formats.h"
#include "consumer/parser/text.h"
#include "consumer/parser/xml_util.h"

namespace feedpipe::parser {
namespace {

namespace ns = xml::ns;

// RSS 1.0 elements live in its namespace (0.90 in Netscape's); lenient readers accept none.
bool is_rss(pugi::xml_node node, std::string_view local) {
  if (node.type() != pugi::node_element || xml::local_name(node) != local) return false;
  std::string_view uri = xml::namespace_of(node);
  return uri == ns::rss10 || uri == ns::rss090 || uri.empty();
}

pugi::xml_node rss_child(pugi::xml_node parent, std::string_view local) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
    if (is_rss(c, local)) return c;
  return {};
}

std::string link_of(pugi::xml_node node, const ParseOptions& options) {
  std::string link = xml::all_text(rss_child(node, "link"));
  return link.empty() ? link : xml::resolve(node, options.base_url, link);
}

Item read_item(pugi::xml_node item, const ParseOptions& options) {
  Item out;
  // rdf:about is the item's URI, RDF's own identifier for it.
  out.guid = trim(xml::attribute(item, "about").value());
  out.link = link_of(item, options);
  out.title = decode_entities(xml::all_text(rss_child(item, "title")));
  out.author = decode_entities(xml::all_text(xml::child(item, ns::dc, "creator")));
  out.published = parse_date(xml::all_text(xml::child(item, ns::dc, "date")));
  out.updated = parse_date(xml::all_text(xml::child(item, ns::dcterms, "modified")));
  if (out.updated.empty()) out.updated = out.published;  // feedparser reads dc:date as the update time
  pugi::xml_node summary = rss_child(item, "description"), content = xml::child(item, ns::content, "encoded");
  out.summary = xml::resolve_html(summary, options.base_url, xml::text(summary));
  out.content = xml::resolve_html(content, options.base_url, xml::text(content));
  return out;
}

}  // namespace

Feed read_rdf(pugi::xml_node rdf, const ParseOptions& options) {
  Feed feed;
  feed.format = "rdf";
  pugi::xml_node channel = rss_child(rdf, "channel");
  feed.title = decode_entities(xml::all_text(rss_child(channel, "title")));
  feed.link = link_of(channel, options);
  auto add_items = [&](pugi::xml_node parent) {
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
      if (is_rss(c, "item")) feed.items.push_back(read_item(c, options));
  };
  add_items(rdf);
  if (channel) add_items(channel);  // some generators nest them, RSS 2.0 style
  return feed;
}

}  // namespace feedpipe::parser
