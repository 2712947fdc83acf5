// Ill-formed, hostile and non-feed documents.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "consumer/parser/parser.h"

namespace feedpipe::parser {
namespace {

using testing::HasSubstr;

TEST(ParserRecovery, BareAmpersandsAndUnknownEntities) {
  ParseResult r = parse_feed(R"(<rss><channel><title>Tom & Jerry &copy; &bogus; AT&T</title>
      <item><link>http://example.com/?a=1&b=2</link></item></channel></rss>)");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "Tom & Jerry \u00a9 &bogus; AT&T");
  EXPECT_EQ(r.feed->items.at(0).link, "http://example.com/?a=1&b=2");
}

TEST(ParserRecovery, ControlCharactersAreDropped) {
  ParseResult r = parse_feed("<rss><channel><title>a\x01""b\x0B""c</title></channel></rss>");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "abc");
}

TEST(ParserRecovery, ForbiddenCharacterReferences) {
  ParseResult r = parse_feed("<rss><channel><title>a&#0;&#1;b&#xD800;c&#x110000;&#65;</title></channel></rss>");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "ab\uFFFDc\uFFFDA");
  EXPECT_NO_THROW(to_json(*r.feed).dump());
}

TEST(ParserRecovery, UnclosedAndStrayTags) {
  ParseResult r = parse_feed(R"(<rss><channel><title>T</title>
      <item><title>One</title><description>a <br> b</description></item>
      <item><title>Two</title></p></item>
    </channel></rss>)");
  ASSERT_TRUE(r) << r.error;
  ASSERT_EQ(r.feed->items.size(), 2u);
  EXPECT_EQ(r.feed->items[1].title, "Two");
}

TEST(ParserRecovery, TruncatedDocumentAndTrailingGarbage) {
  ParseResult r = parse_feed("<rss><channel><title>T</title><item><title>One</title></item><item><title>Tw");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->items.size(), 2u);
  r = parse_feed("<rss><channel><title>T</title></channel></rss>\n<b>Warning</b>: PHP <i>oops</b>");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "T");
}

TEST(ParserRecovery, LessThanInText) {
  ParseResult r = parse_feed("<rss><channel><title>a < b</title></channel></rss>");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "a < b");
}

TEST(ParserErrors, HtmlPageIsNotAFeed) {
  ParseResult r = parse_feed(R"(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Home</title></head>
<body><p>Welcome<br>to my site</body></html>)");
  EXPECT_FALSE(r);
  EXPECT_EQ(r.error, "not a feed: root element <html>");
  r = parse_feed("<!-- c --><HTML lang=en><body class=x></HTML>");  // beyond XML repair
  EXPECT_EQ(r.error, "not a feed: root element <HTML>");
}

TEST(ParserErrors, EmptyAndGarbage) {
  EXPECT_EQ(parse_feed("").error, "not a feed: empty document");
  EXPECT_EQ(parse_feed(" \n\t ").error, "not a feed: empty document");
  static constexpr char kBytes[] = "\x00\x13\xff\xfe garbage";
  ParseResult r = parse_feed(std::string(kBytes, sizeof kBytes - 1));
  EXPECT_FALSE(r);
  EXPECT_THAT(r.error, HasSubstr("not a feed"));
  r = parse_feed("<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
  EXPECT_EQ(r.error, "not a feed: root element <svg>");
}

TEST(ParserErrors, ParseErrorHasLineAndColumn) {
  // An unquoted attribute is beyond repair.
  ParseResult r = parse_feed("<rss>\n<channel>\n  <item foo=bar><title>T</title></item></channel></rss>");
  EXPECT_FALSE(r);
  EXPECT_THAT(r.error, HasSubstr("XML parse error at line 3, column 13: malformed attribute"));
}

TEST(ParserErrors, TooDeep) {
  std::string doc = "<rss><channel><item><description>";
  for (int i = 0; i < 300; ++i) doc += "<div>";
  for (int i = 0; i < 300; ++i) doc += "</div>";
  doc += "</description></item></channel></rss>";
  ParseResult r = parse_feed(doc);
  EXPECT_FALSE(r);
  EXPECT_THAT(r.error, HasSubstr("nesting deeper than 256"));
  EXPECT_THAT(r.error, HasSubstr("line 1"));

  ParseOptions generous;
  generous.max_depth = 400;
  EXPECT_TRUE(parse_feed(doc, generous));
}

TEST(ParserErrors, VeryDeepDoesNotOverflowTheStack) {
  std::string doc = "<rss>";
  for (int i = 0; i < 200000; ++i) doc += "<a>";
  EXPECT_FALSE(parse_feed(doc));
  std::string json(200000, '[');
  EXPECT_THAT(parse_feed(json).error, HasSubstr("nesting deeper"));
}

TEST(ParserErrors, EntityBombIsRefused) {
  ParseResult r = parse_feed(R"(<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<rss><channel><title>&lol2;</title></channel></rss>)");
  EXPECT_FALSE(r);
  EXPECT_THAT(r.error, HasSubstr("entity declaration 'lol1' references another entity"));
}

TEST(ParserErrors, PlainEntityDeclarationIsHarmless) {
  ParseResult r = parse_feed(R"(<!DOCTYPE rss [<!ENTITY name "value">]><rss><channel><title>T</title></channel></rss>)");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "T");
}

TEST(ParserErrors, ExternalEntityIsNeverRead) {
  // XXE: a SYSTEM entity is neither fetched nor read from disk; its reference stays text.
  ParseResult r = parse_feed(R"(<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]>
<rss><channel><title>a&xxe;b</title></channel></rss>)");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.feed->title, "a&xxe;b");
}

TEST(ParserErrors, OneEntityReferencedManyTimesIsCapped) {
  // The "quadratic blowup": no entity references another, but 2,000 references to a 10 KB value
  // would make 20 MB of text from a 30 KB document. Expansion stops at 1 MiB in total.
  std::string doc = "<!DOCTYPE rss [<!ENTITY big \"" + std::string(10000, 'x') + "\">]><rss><channel><title>";
  for (int i = 0; i < 2000; ++i) doc += "&big;";
  doc += "</title></channel></rss>";
  ParseResult r = parse_feed(doc);
  ASSERT_TRUE(r) << r.error;
  EXPECT_LE(r.feed->title.size(), (1u << 20) + doc.size());
  EXPECT_GE(r.feed->title.size(), 100u * 10000u);  // expanded up to the cap, as an XML parser would
}

TEST(ParserErrors, JsonThatIsNotAFeed) {
  EXPECT_THAT(parse_feed(R"({"hello": "world"})").error, HasSubstr("not a feed"));
  ParseResult r = parse_feed("{\n  \"version\": \"https://jsonfeed.org/version/1\",\n  \"items\": [,]\n}");
  EXPECT_FALSE(r);
  EXPECT_THAT(r.error, HasSubstr("JSON parse error at line 3"));
}

}  // namespace
}  // namespace feedpipe::parser
