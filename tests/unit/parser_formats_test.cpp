// One sample document per format, read field by field.
#include <gtest/gtest.h>

#include "consumer/parser/parser.h"

namespace feedpipe::parser {
namespace {

Feed parse_ok(std::string_view doc, const ParseOptions& options = {}) {
  ParseResult r = parse_feed(doc, options);
  EXPECT_TRUE(r) << r.error;
  return r ? *r.feed : Feed{};
}

TEST(ParserRss, ReadsChannelAndItems) {
  Feed f = parse_ok(R"(<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title> Liftoff News </title>
    <link>http://liftoff.msfc.nasa.gov/</link>
    <atom:link rel="self" href="http://liftoff.msfc.nasa.gov/rss.xml"/>
    <item>
      <title>Star City</title>
      <link>http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp</link>
      <description>How do Americans get ready to work with Russians aboard the ISS?</description>
      <content:encoded><![CDATA[<p>Full <b>text</b></p>]]></content:encoded>
      <author>jo@example.com (Jo)</author>
      <pubDate>Tue, 03 Jun 2003 09:39:21 GMT</pubDate>
      <atom:updated>2003-06-04T10:00:00+02:00</atom:updated>
      <guid isPermaLink="false">starcity-1</guid>
    </item>
    <item>
      <title>Second</title>
      <dc:creator>Dee</dc:creator>
      <dc:date>2003-05-30T11:06:42Z</dc:date>
      <guid>http://liftoff.msfc.nasa.gov/2003/05/30.html#item572</guid>
    </item>
  </channel>
</rss>)");
  EXPECT_EQ(f.format, "rss");
  EXPECT_EQ(f.title, "Liftoff News");
  EXPECT_EQ(f.link, "http://liftoff.msfc.nasa.gov/");
  ASSERT_EQ(f.items.size(), 2u);
  const Item& a = f.items[0];
  EXPECT_EQ(a.guid, "starcity-1");
  EXPECT_EQ(a.link, "http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp");
  EXPECT_EQ(a.title, "Star City");
  EXPECT_EQ(a.author, "jo@example.com (Jo)");
  EXPECT_EQ(a.published, "2003-06-03T09:39:21Z");
  EXPECT_EQ(a.updated, "2003-06-04T08:00:00Z");
  EXPECT_EQ(a.summary, "How do Americans get ready to work with Russians aboard the ISS?");
  EXPECT_EQ(a.content, "<p>Full <b>text</b></p>");
  const Item& b = f.items[1];
  EXPECT_EQ(b.author, "Dee");
  EXPECT_EQ(b.published, "2003-05-30T11:06:42Z");
  // A permalink guid stands in for the missing link.
  EXPECT_EQ(b.guid, "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572");
  EXPECT_EQ(b.link, "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572");
}

TEST(ParserRss, GuidIsNotALinkWhenNotAPermalink) {
  Feed f = parse_ok(R"(<rss><channel><item>
      <guid isPermaLink="false">http://example.com/a</guid></item>
      <item><guid>12345</guid></item></channel></rss>)");
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[0].link, "");
  EXPECT_EQ(f.items[1].link, "");  // an opaque id, whatever isPermaLink's default says
  EXPECT_EQ(f.items[1].guid, "12345");
}

TEST(ParserRss, MatchesNamespacesByUriNotPrefix) {
  Feed f = parse_ok(R"(<rss xmlns:x="http://purl.org/dc/elements/1.1/"
      xmlns:y="http://purl.org/rss/1.0/modules/content/" xmlns:dc="urn:not-dublin-core">
    <channel><title>T</title>
      <item><dc:creator>wrong</dc:creator><x:creator>right</x:creator><y:encoded>body</y:encoded></item>
    </channel></rss>)");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].author, "right");
  EXPECT_EQ(f.items[0].content, "body");
}

TEST(ParserRss, AtomLinkIsTheFallbackChannelLink) {
  Feed f = parse_ok(R"(<rss xmlns:a="http://www.w3.org/2005/Atom"><channel><title>T</title>
      <a:link rel="self" href="http://example.com/feed"/>
      <a:link rel="alternate" href="http://example.com/"/></channel></rss>)");
  EXPECT_EQ(f.link, "http://example.com/");
}

TEST(ParserRss, ResolvesRelativeLinksAgainstBaseUrl) {
  ParseOptions options;
  options.base_url = "https://example.com/blog/feed.xml";
  Feed f = parse_ok(R"(<rss><channel><link>/blog/</link>
      <item><link>posts/1.html</link></item>
      <item><link>http://other.example/x</link></item></channel></rss>)",
                    options);
  EXPECT_EQ(f.link, "https://example.com/blog/");
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[0].link, "https://example.com/blog/posts/1.html");
  EXPECT_EQ(f.items[1].link, "http://other.example/x");
}

TEST(ParserRss, LeavesLinksRelativeWithoutBaseUrl) {
  Feed f = parse_ok("<rss><channel><item><link>posts/1.html</link></item></channel></rss>");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].link, "posts/1.html");
}

TEST(ParserRss, UserlandNamespacedRss) {
  Feed f = parse_ok(R"(<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel>
      <title>U</title><link>http://u.example/</link><item><title>I</title></item></channel></rss>)");
  EXPECT_EQ(f.title, "U");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].title, "I");
}

TEST(ParserRdf, ReadsItemsBesideTheChannel) {
  Feed f = parse_ok(R"(<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/"
         xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel rdf:about="http://xml.com/xml/news.rss">
    <title>XML.com</title>
    <link>http://xml.com/pub</link>
    <items><rdf:Seq><rdf:li resource="http://xml.com/pub/2000/08/09/xslt/xslt.html"/></rdf:Seq></items>
  </channel>
  <item rdf:about="http://xml.com/pub/2000/08/09/xslt/xslt.html">
    <title>Processing Inclusions with XSLT</title>
    <link>http://xml.com/pub/2000/08/09/xslt/xslt.html</link>
    <description>Processing document inclusions</description>
    <content:encoded>&lt;p&gt;Body&lt;/p&gt;</content:encoded>
    <dc:creator>Bob</dc:creator>
    <dc:date>2000-08-09T12:00:00-05:00</dc:date>
  </item>
</rdf:RDF>)");
  EXPECT_EQ(f.format, "rdf");
  EXPECT_EQ(f.title, "XML.com");
  EXPECT_EQ(f.link, "http://xml.com/pub");
  ASSERT_EQ(f.items.size(), 1u);
  const Item& i = f.items[0];
  EXPECT_EQ(i.guid, "http://xml.com/pub/2000/08/09/xslt/xslt.html");
  EXPECT_EQ(i.title, "Processing Inclusions with XSLT");
  EXPECT_EQ(i.link, "http://xml.com/pub/2000/08/09/xslt/xslt.html");
  EXPECT_EQ(i.summary, "Processing document inclusions");
  EXPECT_EQ(i.content, "<p>Body</p>");
  EXPECT_EQ(i.author, "Bob");
  EXPECT_EQ(i.published, "2000-08-09T17:00:00Z");
}

TEST(ParserAtom, ReadsFeedAndEntries) {
  Feed f = parse_ok(R"(<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">Example Feed</title>
  <link rel="self" href="http://example.org/feed.atom"/>
  <link href="http://example.org/"/>
  <author><name>Feed Author</name></author>
  <entry>
    <title type="html">Atom &lt;b&gt;Powered&lt;/b&gt; Robots &amp;amp;c</title>
    <link rel="alternate" type="text/html" href="http://example.org/2003/12/13/atom03"/>
    <link rel="edit" href="http://example.org/edit/1"/>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <published>2003-12-13T08:29:29-04:00</published>
    <updated>2003-12-13T18:30:02Z</updated>
    <author><name>John Doe</name></author>
    <author><name>Jane Doe</name></author>
    <summary>Some text.</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <b>world</b> &amp; more</p></div></content>
  </entry>
  <entry><id>tag:example.org,2003:2</id><title>Two</title></entry>
</feed>)");
  EXPECT_EQ(f.format, "atom");
  EXPECT_EQ(f.title, "Example Feed");
  EXPECT_EQ(f.link, "http://example.org/");
  ASSERT_EQ(f.items.size(), 2u);
  const Item& e = f.items[0];
  EXPECT_EQ(e.guid, "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a");
  EXPECT_EQ(e.link, "http://example.org/2003/12/13/atom03");
  EXPECT_EQ(e.title, "Atom Powered Robots &c");
  EXPECT_EQ(e.author, "John Doe, Jane Doe");
  EXPECT_EQ(e.published, "2003-12-13T12:29:29Z");
  EXPECT_EQ(e.updated, "2003-12-13T18:30:02Z");
  EXPECT_EQ(e.summary, "Some text.");
  EXPECT_EQ(e.content, "<p>Hello <b>world</b> &amp; more</p>");
  EXPECT_EQ(f.items[1].author, "Feed Author");  // inherited from the feed
}

TEST(ParserAtom, ReadsAtom03) {
  Feed f = parse_ok(R"(<feed version="0.3" xmlns="http://purl.org/atom/ns#">
  <title>Old</title><link rel="alternate" type="text/html" href="http://example.org/"/>
  <entry><title>E</title><link rel="alternate" type="text/html" href="http://example.org/e"/>
    <id>tag:e</id><issued>2004-01-01T00:00:00Z</issued><modified>2004-01-02T00:00:00Z</modified>
    <author><name>A</name></author>
    <content type="text/html" mode="escaped">&lt;p&gt;hi&lt;/p&gt;</content></entry></feed>)");
  EXPECT_EQ(f.link, "http://example.org/");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].published, "2004-01-01T00:00:00Z");
  EXPECT_EQ(f.items[0].updated, "2004-01-02T00:00:00Z");
  EXPECT_EQ(f.items[0].content, "<p>hi</p>");
  EXPECT_EQ(f.items[0].link, "http://example.org/e");
}

TEST(ParserAtom, PrefixedAtomNamespace) {
  Feed f = parse_ok(R"(<a:feed xmlns:a="http://www.w3.org/2005/Atom" xmlns="http://www.w3.org/1999/xhtml">
      <a:title>T</a:title><a:entry><a:id>x</a:id><a:title>E</a:title></a:entry></a:feed>)");
  EXPECT_EQ(f.title, "T");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].title, "E");
}

TEST(ParserAtom, XhtmlContentDropsPrefixesAndForeignMarkup) {
  Feed f = parse_ok(R"(<feed xmlns="http://www.w3.org/2005/Atom" xmlns:h="http://www.w3.org/1999/xhtml">
      <entry><id>1</id><title type="xhtml"><h:div>A <h:b>bold</h:b> title</h:div></title>
      <content type="xhtml"><h:div><h:p class="x">one<h:br/></h:p><ul xmlns="urn:bogus"><li>two</li></ul></h:div></content>
      </entry></feed>)");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].title, "A bold title");
  EXPECT_EQ(f.items[0].content, "<p class=\"x\">one<br /></p>two");
}

TEST(ParserAtom, ResolvesNestedXmlBase) {
  ParseOptions options;
  options.base_url = "http://example.org/feeds/atom.xml";
  Feed f = parse_ok(R"(<feed xmlns="http://www.w3.org/2005/Atom" xml:base="/blog/">
      <link href="index.html"/>
      <entry xml:base="2024/"><id>1</id><link href="post.html"/></entry>
      <entry><id>2</id><link xml:base="http://cdn.example.net/a/" href="b.html"/></entry>
      <entry><id>3</id><link href="../up.html"/></entry>
    </feed>)",
                    options);
  EXPECT_EQ(f.link, "http://example.org/blog/index.html");
  ASSERT_EQ(f.items.size(), 3u);
  EXPECT_EQ(f.items[0].link, "http://example.org/blog/2024/post.html");
  EXPECT_EQ(f.items[1].link, "http://cdn.example.net/a/b.html");
  EXPECT_EQ(f.items[2].link, "http://example.org/up.html");
}

TEST(ParserJsonFeed, ReadsVersion11) {
  Feed f = parse_ok(R"({
    "version": "https://jsonfeed.org/version/1.1",
    "title": "My Example Feed",
    "home_page_url": "https://example.org/",
    "items": [
      {"id": "2", "content_text": "This is a second item.", "url": "https://example.org/second-item",
       "authors": [{"name": "Ann"}, {"name": "Ben"}], "date_published": "2010-02-07T14:04:00-05:00"},
      {"id": 1, "content_html": "<p>Hello, world!</p>", "url": "/initial-post", "title": "First",
       "summary": "S", "date_modified": "2010-02-08T00:00:00Z"}
    ]})",
                    ParseOptions{"https://example.org/feed.json", "", 256});
  EXPECT_EQ(f.format, "json");
  EXPECT_EQ(f.title, "My Example Feed");
  EXPECT_EQ(f.link, "https://example.org/");
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[0].guid, "2");
  EXPECT_EQ(f.items[0].content, "This is a second item.");
  EXPECT_EQ(f.items[0].author, "Ann, Ben");
  EXPECT_EQ(f.items[0].published, "2010-02-07T19:04:00Z");
  EXPECT_EQ(f.items[1].guid, "1");
  EXPECT_EQ(f.items[1].link, "https://example.org/initial-post");
  EXPECT_EQ(f.items[1].title, "First");
  EXPECT_EQ(f.items[1].summary, "S");
  EXPECT_EQ(f.items[1].content, "<p>Hello, world!</p>");
  EXPECT_EQ(f.items[1].updated, "2010-02-08T00:00:00Z");
}

TEST(ParserJsonFeed, ReadsVersion1Author) {
  Feed f = parse_ok(R"({"version": "https://jsonfeed.org/version/1", "title": "T",
      "items": [{"id": "a", "author": {"name": "Old Style"}, "title": 5}]})");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].author, "Old Style");
  EXPECT_EQ(f.items[0].title, "");  // wrong type: absent
}

TEST(ParserToJson, OmitsEmptyFields) {
  Feed f;
  f.format = "rss";
  f.title = "T";
  Item i;
  i.guid = "g";
  i.published = "2024-01-02T03:04:05Z";
  f.items.push_back(i);
  nlohmann::json j = to_json(f);
  EXPECT_EQ(j, nlohmann::json::parse(
                   R"({"format":"rss","title":"T","items":[{"guid":"g","published":"2024-01-02T03:04:05Z"}]})"));
  EXPECT_FALSE(j.contains("link"));
  EXPECT_EQ(to_json(Feed{"atom", "", "", {}}).dump(), R"({"format":"atom","items":[]})");
}

}  // namespace
}  // namespace feedpipe::parser
