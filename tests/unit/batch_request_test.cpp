// POST /v1/batches bodies: every refusal DESIGN.md names, and bodies built to cost memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "producer/batch_request.h"

namespace feedpipe::producer {
namespace {

using ::testing::HasSubstr;

Refusal refusal_of(const std::string& body, BatchRequestLimits limits = {3, 32}) {
  auto r = parse_batch_request(body, limits);
  if (auto* refusal = std::get_if<Refusal>(&r)) return *refusal;
  return Refusal{202, "", ""};
}

TEST(BatchRequestParsing, KeepsTheFeedsInOrder) {
  auto r = parse_batch_request(R"({"other":{"feeds":[1]},"feeds":["http://a.test/","not a url"]})", 3);
  ASSERT_TRUE(std::holds_alternative<BatchRequest>(r));
  EXPECT_EQ(std::get<BatchRequest>(r).feeds, (std::vector<std::string>{"http://a.test/", "not a url"}));
}

TEST(BatchRequestParsing, EachRefusalHasItsCode) {
  EXPECT_EQ(refusal_of("").code, "malformed_json");
  EXPECT_EQ(refusal_of(R"({"feeds":["a"]} x)").code, "malformed_json");
  EXPECT_EQ(refusal_of("\"feeds\"").code, "invalid_request");
  EXPECT_EQ(refusal_of(R"([{"feeds":["a"]}])").code, "invalid_request");
  EXPECT_THAT(refusal_of(R"({"feed":["a"]})").message, HasSubstr("\"feeds\" is missing"));
  EXPECT_THAT(refusal_of(R"({"feeds":{"a":"b"}})").message, HasSubstr("must be an array"));
  EXPECT_THAT(refusal_of(R"({"feeds":null})").message, HasSubstr("must be an array"));
  EXPECT_EQ(refusal_of(R"({"feeds":[]})").status, 422);
  EXPECT_THAT(refusal_of(R"({"feeds":["a",["b"],"c"]})").message, HasSubstr("feeds[1] is not a string"));
  Refusal many = refusal_of(R"({"feeds":["a","b","c",{"d":1},"e"]})");
  EXPECT_EQ(many.status, 413);
  EXPECT_THAT(many.message, HasSubstr("the batch has 5 feeds; the limit is 3"));
}

TEST(BatchRequestParsing, ARepeatedFeedsKeyCountsOnceTheLastTime) {
  auto r = parse_batch_request(R"({"feeds":["a","b","c"],"feeds":["d"]})", 3);
  ASSERT_TRUE(std::holds_alternative<BatchRequest>(r));
  EXPECT_EQ(std::get<BatchRequest>(r).feeds, std::vector<std::string>{"d"});
  EXPECT_THAT(refusal_of(R"({"feeds":["a"],"feeds":7})").message, HasSubstr("must be an array"));
}

TEST(BatchRequestParsing, DeepNestingIsRefusedAnywhereInTheBody) {
  // A tree of nested arrays costs ~80 bytes per `[`: 16 MiB of them would take over a gigabyte.
  std::string deep = R"({"feeds":["http://a.test/"],"extra":)" + std::string(33, '[') + std::string(33, ']') + "}";
  Refusal r = refusal_of(deep);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.code, "invalid_request");
  EXPECT_THAT(r.message, HasSubstr("deeper than 32 levels"));
  EXPECT_EQ(refusal_of(std::string(1 << 20, '[')).code, "invalid_request");  // unterminated, too
  // Within the limit, other fields are ignored.
  std::string fine = R"({"feeds":["http://a.test/"],"extra":)" + std::string(30, '[') + std::string(30, ']') + "}";
  EXPECT_EQ(refusal_of(fine).status, 202);
  EXPECT_EQ(refusal_of(deep, {3, 40}).status, 202);
}

TEST(BatchRequestParsing, TooManyFeedsSaysHowMany) {
  std::string body = R"({"feeds":[)";
  for (int i = 0; i < 200000; ++i) body += i ? ",\"http://x.test/\"" : "\"http://x.test/\"";
  body += "]}";
  Refusal r = refusal_of(body, {10000, 32});
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.code, "batch_too_large");
  EXPECT_THAT(r.message, HasSubstr("200000 feeds"));
}

}  // namespace
}  // namespace feedpipe::producer
