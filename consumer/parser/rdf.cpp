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

// `namespaces`: for the children of `item` (see xml::ChildNamespaces).
Item read_item(pugi::xml_node item, const ParseOptions& options, xml::ChildNamespaces& namespaces) {
  // One pass over the item's children, keeping the first of each kind.
  pugi::xml_node title, link, creator, date, modified, summary, content;
  for (pugi::xml_node c = item.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    std::string_view local = xml::local_name(c);
    std::string_view uri = namespaces.of(c);
    auto first = [&](pugi::xml_node& slot) {
      if (!slot) slot = c;
    };
    if (uri == ns::rss10 || uri == ns::rss090 || uri.empty()) {
      if (local == "title") first(title);
      else if (local == "link") first(link);
      else if (local == "description") first(summary);
    } else if (uri == ns::dc) {
      if (local == "creator") first(creator);
      else if (local == "date") first(date);
    } else if (uri == ns::dcterms) {
      if (local == "modified") first(modified);
    } else if (uri == ns::content) {
      if (local == "encoded") first(content);
    }
  }
  Item out;
  // rdf:about is the item's URI, RDF's own identifier for it.
  out.guid = trim(xml::attribute(item, "about").value());
  if (std::string l = xml::all_text(link); !l.empty()) out.link = xml::resolve(item, options.base_url, l);
  out.title = decode_entities(xml::all_text(title));
  out.author = decode_entities(xml::all_text(creator));
  std::string scratch;
  out.published = date ? parse_date(xml::all_text_view(date, scratch)) : std::string();
  out.updated = modified ? parse_date(xml::all_text_view(modified, scratch)) : std::string();
  if (out.updated.empty()) out.updated = out.published;  // feedparser reads dc:date as the update time
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
    xml::ChildNamespaces children;      // of `parent`
    xml::ChildNamespaces grandchildren;  // of the items that declare no namespace
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element || xml::local_name(c) != "item") continue;
      if (std::string_view uri = children.of(c); uri != ns::rss10 && uri != ns::rss090 && !uri.empty()) continue;
      xml::ChildNamespaces own;
      feed.items.push_back(read_item(c, options, xml::children_namespaces(c, grandchildren, own)));
    }
  };
  add_items(rdf);
  if (channel) add_items(channel);  // some generators nest them, RSS 2.0 style
  return feed;
}

}  // namespace feedpipe::parser
