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

// The children of an <item> that feedpipe reads, found in one pass (the first of each kind).
struct ItemNodes {
  pugi::xml_node title, dc_title, guid, author, dc_creator, dc_author, itunes_author;
  pugi::xml_node pub_date, dc_date, dcterms_issued, atom_updated, dcterms_modified, dc_modified;
  pugi::xml_node description, dc_description, summary, content_encoded, xhtml_body, body, fullitem;
  std::string link;  // the first non-empty <link>
  pugi::xml_node atom_alternate;

  // `namespaces`: for the children of `item` (see xml::ChildNamespaces).
  ItemNodes(pugi::xml_node item, xml::ChildNamespaces& namespaces) {
    auto first = [](pugi::xml_node& slot, pugi::xml_node c) {
      if (!slot) slot = c;
    };
    for (pugi::xml_node c = item.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      std::string_view local = xml::local_name(c);
      std::string_view uri = namespaces.of(c);
      if (uri.empty() || uri == ns::userland) {
        if (local == "title") first(title, c);
        else if (local == "link") {
          if (link.empty()) link = xml::all_text(c);
        } else if (local == "guid") first(guid, c);
        else if (local == "author") first(author, c);
        else if (local == "pubDate") first(pub_date, c);
        else if (local == "description") first(description, c);
        else if (local == "summary") first(summary, c);
        else if (local == "body") first(body, c);
        else if (local == "fullitem") first(fullitem, c);
      } else if (uri == ns::dc) {
        if (local == "title") first(dc_title, c);
        else if (local == "creator") first(dc_creator, c);
        else if (local == "author") first(dc_author, c);
        else if (local == "date") first(dc_date, c);
        else if (local == "description") first(dc_description, c);
        else if (local == "modified") first(dc_modified, c);
      } else if (uri == ns::dcterms) {
        if (local == "issued") first(dcterms_issued, c);
        else if (local == "modified") first(dcterms_modified, c);
      } else if (uri == ns::content) {
        if (local == "encoded") first(content_encoded, c);
      } else if (uri == ns::atom10) {
        if (local == "updated") first(atom_updated, c);
        else if (local == "link" && !atom_alternate) {
          std::string_view rel = c.attribute("rel").value();
          if (rel.empty() || rel == "alternate") atom_alternate = c;
        }
      } else if (uri == ns::itunes) {
        if (local == "author") first(itunes_author, c);
      } else if (uri == ns::xhtml) {
        if (local == "body") first(xhtml_body, c);
      }
    }
  }
};

Item read_item(pugi::xml_node item, const ParseOptions& options, xml::ChildNamespaces& namespaces) {
  Item out;
  ItemNodes n(item, namespaces);
  std::string base = xml::base_url(item, options.base_url);
  auto resolve = [&](std::string_view ref) { return ref.empty() ? std::string() : xml::resolve_ref(base, ref); };

  out.title = first_text({n.title, n.dc_title});
  out.link = resolve(n.link);
  if (out.link.empty()) out.link = resolve(trim(n.atom_alternate.attribute("href").value()));

  if (n.guid) {
    out.guid = xml::all_text(n.guid);
    // isPermaLink defaults to true (feedparser then takes the guid as the link), but many feeds
    // put opaque ids there without saying so: only a URI with a scheme stands in for the link.
    std::string_view permalink = n.guid.attribute("isPermaLink").value();
    if (out.link.empty() && !out.guid.empty() && permalink != "false" && xml::has_scheme(out.guid))
      out.link = resolve(out.guid);
  }

  out.author = first_text({n.author, n.dc_creator, n.dc_author, n.itunes_author});

  std::string scratch;
  auto date = [&](pugi::xml_node node) {
    return node ? parse_date(xml::all_text_view(node, scratch)) : std::string();
  };
  std::string dc_date = date(n.dc_date);
  out.published = date(n.pub_date);
  if (out.published.empty()) out.published = date(n.dcterms_issued);
  if (out.published.empty()) out.published = dc_date;
  out.updated = date(n.atom_updated);
  if (out.updated.empty()) out.updated = date(n.dcterms_modified);
  if (out.updated.empty()) out.updated = date(n.dc_modified);
  if (out.updated.empty()) out.updated = dc_date;  // feedparser reads dc:date as the update time

  pugi::xml_node summary = n.description ? n.description : n.dc_description;
  // A stray <summary> (Atom's word): with a description too, the first is the summary and the
  // other the content, as feedparser reads them.
  pugi::xml_node other = n.summary;
  if (!summary) std::swap(summary, other);
  else if (other && comes_before(other, summary)) std::swap(summary, other);
  out.summary = xml::resolve_html(summary, options.base_url, xml::text(summary));
  // The full text: content:encoded, else the older xhtml:body, <body> and <fullitem>.
  pugi::xml_node content = n.content_encoded;
  if (!content && other) content = other;
  std::string body;
  if (content) body = xml::text(content);
  else if ((content = n.xhtml_body) || (content = n.body)) body = trim(xml::inner_markup(content));
  else if ((content = n.fullitem)) body = xml::text(content);
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
  if (!link.empty()) feed.link = xml::resolve_ref(base, link);

  auto add_items = [&](pugi::xml_node parent) {
    xml::ChildNamespaces children;      // of `parent`
    xml::ChildNamespaces grandchildren;  // of the items that declare no namespace
    for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element || xml::local_name(c) != "item") continue;
      if (std::string_view uri = children.of(c); !uri.empty() && uri != ns::userland) continue;
      xml::ChildNamespaces own;
      feed.items.push_back(read_item(c, options, xml::children_namespaces(c, grandchildren, own)));
    }
  };
  add_items(channel);
  if (channel != rss) add_items(rss);  // items misplaced after </channel>
  return feed;
}

}  // namespace feedpipe::parser
