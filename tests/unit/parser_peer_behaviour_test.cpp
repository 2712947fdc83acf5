// Behaviour adopted from Python feedparser while making its test suite and the wild corpus agree
// (tests/unit/parser_conformance_test.cpp, parser_wild_agreement_test.cpp), pinned down one by one.
#include <gtest/gtest.h>

#include "consumer/parser/parser.h"

namespace feedpipe::parser {
namespace {

Feed parse_ok(std::string_view doc, const ParseOptions& options = {}) {
  ParseResult r = parse_feed(doc, options);
  EXPECT_TRUE(r) << r.error;
  return r ? *r.feed : Feed{};
}

TEST(ParserPeer, RelativeUrlsInsideHtmlResolveAgainstTheBase) {
  ParseOptions options;
  options.base_url = "http://example.com/feed/rss.xml";
  Feed f = parse_ok(R"(<rss><channel><item>
      <description>&lt;a href="/a"&gt;x&lt;/a&gt; &lt;img src='b.png'/&gt; &lt;a href="#top"&gt;t&lt;/a&gt;</description>
      </item></channel></rss>)",
                    options);
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].summary,
            R"(<a href="http://example.com/a">x</a> <img src='http://example.com/feed/b.png' /> <a href="#top">t</a>)");
}

TEST(ParserPeer, UriGuidWithoutLinkIsTheLinkButAnOpaqueOneIsNot) {
  Feed f = parse_ok(R"(<rss><channel><item><guid>urn:uuid:1</guid></item><item><guid>42</guid></item></channel></rss>)");
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[0].link, "urn:uuid:1");
  EXPECT_EQ(f.items[1].link, "");
  Feed a = parse_ok(R"(<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>tag:x,2024:1</id></entry></feed>)");
  ASSERT_EQ(a.items.size(), 1u);
  EXPECT_EQ(a.items[0].link, "tag:x,2024:1");
}

TEST(ParserPeer, AtomAuthorKeepsTheEmail) {
  Feed f = parse_ok(R"(<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id>
      <author><name>Jo</name><email>jo@example.com</email></author></entry></feed>)");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].author, "Jo (jo@example.com)");
}

TEST(ParserPeer, Base64AndOtherMediaTypes) {
  Feed f = parse_ok(R"(<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id>
      <content type="application/octet-stream">RXhhbXBsZSA8Yj5BdG9tPC9iPg==</content></entry></feed>)");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].content, "Example <b>Atom</b>");
}

TEST(ParserPeer, WindowsQuotesInsteadOfC1Controls) {
  Feed f = parse_ok("<rss><channel><item><title>don\xC2\x92t &#146;</title>"
                    "<description>a &amp;#150; b</description></item></channel></rss>");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].title, "don\u2019t \u2019");
  EXPECT_EQ(f.items[0].summary, "a &#x2013; b");
}

TEST(ParserPeer, DoctypeEntitiesWithLiteralValuesExpand) {
  Feed f = parse_ok(R"(<!DOCTYPE rss [ <!ENTITY id "tag:example.com,"> ]>
      <rss><channel><item><guid isPermaLink="false">&id;2006:/x</guid></item></channel></rss>)");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].guid, "tag:example.com,2006:/x");
}

TEST(ParserPeer, DublinCoreFallbacksAndDates) {
  Feed f = parse_ok(R"(<rss xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">
      <channel><dc:title>Feed</dc:title><item><dc:title>T</dc:title><dc:description>D</dc:description>
      <dcterms:issued>2024-01-02T03:04:05Z</dcterms:issued><dc:date>2024-02-02T00:00:00Z</dc:date></item></channel></rss>)");
  EXPECT_EQ(f.title, "Feed");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].title, "T");
  EXPECT_EQ(f.items[0].summary, "D");
  EXPECT_EQ(f.items[0].published, "2024-01-02T03:04:05Z");
  EXPECT_EQ(f.items[0].updated, "2024-02-02T00:00:00Z");
}

TEST(ParserPeer, Atom03XhtmlKeepsItsDivAtom10DropsIt) {
  Feed f = parse_ok(R"(<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry>
      <summary type="application/xhtml+xml" mode="xml"><div xmlns="http://www.w3.org/1999/xhtml">A <b>b</b></div></summary>
      <content>naked <b>markup</b></content></entry></feed>)");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].summary, "<div>A <b>b</b></div>");
  EXPECT_EQ(f.items[0].content, "naked <b>markup</b>");
}

}  // namespace
}  // namespace feedpipe::parser
