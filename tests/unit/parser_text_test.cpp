// Text as feeds really write it: entities, CDATA, white space, encodings.
#include <gtest/gtest.h>

#include "consumer/parser/parser.h"
#include "consumer/parser/text.h"
#include "consumer/parser/xml_util.h"
#include "common/url.h"

namespace feedpipe::parser {
namespace {

Feed parse_ok(std::string_view doc, const ParseOptions& options = {}) {
  ParseResult r = parse_feed(doc, options);
  EXPECT_TRUE(r) << r.error;
  return r ? *r.feed : Feed{};
}

TEST(ParserText, DecodesHtmlEntitiesXmlDoesNotDeclare) {
  Feed f = parse_ok(R"(<rss><channel><title>Caf&eacute;&nbsp;&mdash; &lt;News&gt; &amp; more &#8220;q&#x201D;</title>
      <item><description>a&nbsp;b</description></item></channel></rss>)");
  EXPECT_EQ(f.title, "Caf\u00e9\u00a0\u2014 <News> & more \u201cq\u201d");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].summary, "a\u00a0b");
}

TEST(ParserText, CdataAndTrimming) {
  Feed f = parse_ok(R"(<rss><channel><title>
        <![CDATA[  Tom & Jerry <3  ]]>
      </title><item><description><![CDATA[<p>Hi &amp; bye</p>]]></description></item></channel></rss>)");
  EXPECT_EQ(f.title, "Tom & Jerry <3");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].summary, "<p>Hi &amp; bye</p>");  // HTML stays HTML
}

TEST(ParserText, DoubleEscapedTitle) {
  Feed f = parse_ok("<rss><channel><title>AT&amp;amp;T &amp;eacute;</title></channel></rss>");
  EXPECT_EQ(f.title, "AT&T \u00e9");
}

TEST(ParserText, UnescapedMarkupInDescriptionIsKept) {
  Feed f = parse_ok("<rss><channel><item><description><p>Hello <b>bold</b></p></description></item></channel></rss>");
  ASSERT_EQ(f.items.size(), 1u);
  EXPECT_EQ(f.items[0].summary, "<p>Hello <b>bold</b></p>");
}

TEST(ParserText, DecodeEntitiesHelper) {
  EXPECT_EQ(decode_entities("&eacute;&#233;&#xE9;&bogus;&amp;&"), "\u00e9\u00e9\u00e9&bogus;&&");
  EXPECT_EQ(trim(" \n\t x y \r\n"), "x y");
}

TEST(ParserEncoding, Latin1Declared) {
  std::string doc = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss><channel><title>Caf\xe9 \xabna\xefve\xbb</title></channel></rss>";
  EXPECT_EQ(parse_ok(doc).title, "Caf\u00e9 \u00abna\u00efve\u00bb");
}

TEST(ParserEncoding, Windows1252Declared) {
  std::string doc = "<?xml version='1.0' encoding='windows-1252'?><rss><channel><title>\x93quoted\x94 \x96 \x80""5</title></channel></rss>";
  EXPECT_EQ(parse_ok(doc).title, "\u201cquoted\u201d \u2013 \u20ac5");
}

TEST(ParserEncoding, HttpCharsetOverridesDeclaration) {
  std::string doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss><channel><title>Caf\xe9</title></channel></rss>";
  ParseOptions options;
  options.http_charset = "iso-8859-1";
  EXPECT_EQ(parse_ok(doc, options).title, "Caf\u00e9");
}

TEST(ParserEncoding, Utf8BomAndUtf16Bom) {
  EXPECT_EQ(parse_ok("\xEF\xBB\xBF<rss><channel><title>Caf\xC3\xA9</title></channel></rss>").title, "Caf\u00e9");
  std::string ascii = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><rss><channel><title>Hi</title></channel></rss>";
  std::string utf16 = "\xFF\xFE";
  for (char c : ascii) {
    utf16 += c;
    utf16 += '\0';
  }
  EXPECT_EQ(parse_ok(utf16).title, "Hi");
}

TEST(ParserEncoding, UndeclaredLatin1IsReadAsWindows1252) {
  EXPECT_EQ(parse_ok("<rss><channel><title>na\xefve</title></channel></rss>").title, "na\u00efve");
}

TEST(ParserEncoding, UnknownCharsetIsReadAsUtf8) {
  std::string doc = "<?xml version=\"1.0\" encoding=\"x-no-such-charset\"?><rss><channel><title>Caf\xC3\xA9</title></channel></rss>";
  EXPECT_EQ(parse_ok(doc).title, "Caf\u00e9");
}

}  // namespace
}  // namespace feedpipe::parser

namespace feedpipe::parser {
namespace {

// The fast path of reference resolution answers exactly as libcurl's RFC 3986 resolution, on
// plain bases with and without ports and on the bases it leaves to libcurl.
TEST(ResolveReference, FastPathAgreesWithLibcurl) {
  const char* bases[] = {"http://a.test/x/y.xml",       "https://a.test/feed",      "http://127.0.0.1:8080/feed00001.rss",
                         "http://a.test:65535/",        "http://a.test:80/x/",      "https://a.test:443/x",
                         "http://a.test:0080/x",        "http://a.test:99999/x",    "http://a.test:/x",
                         "http://a.test:8o/x",          "http://user@a.test:81/x",  "http://A.test:81/x/y",
                         "http://a.test:81",            "http://a.test:81?q",       "https://a.test:8443/x/./y"};
  const char* refs[] = {"/r/0", "r/1", "z.html", "../z", "./z", "?q=1", "#frag", "//b.test/p", "/a/b?c=d#e", "c:x", ""};
  for (const char* base : bases)
    for (const char* ref : refs) EXPECT_EQ(xml::resolve_ref(base, ref), resolve_url(base, ref)) << base << " + " << ref;
}

}  // namespace
}  // namespace feedpipe::parser
