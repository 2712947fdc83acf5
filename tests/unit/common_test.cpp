// Small pieces of common/: URLs, settings, offsets.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/json_fields.h"
#include "common/model.h"
#include "common/url.h"
#include "consumer/worker/offset_tracker.h"

namespace feedpipe {
namespace {

TEST(FeedUrl, NormalizesSchemeHostPortAndFragment) {
  EXPECT_EQ(normalize_feed_url("HTTP://Example.COM:80/Feed?x=1#top"), "http://example.com/Feed?x=1");
  EXPECT_EQ(normalize_feed_url("https://example.com:443"), "https://example.com/");
  EXPECT_EQ(normalize_feed_url("https://example.com:8443/a"), "https://example.com:8443/a");
  EXPECT_EQ(normalize_feed_url("  http://example.com/a  "), "http://example.com/a");
  std::string why;
  EXPECT_FALSE(normalize_feed_url("ftp://example.com/", &why));
  EXPECT_NE(why.find("scheme"), std::string::npos);
  EXPECT_FALSE(normalize_feed_url("example.com/feed", &why));
  EXPECT_FALSE(normalize_feed_url("", &why));
  EXPECT_FALSE(normalize_feed_url("http://", &why));
}

// The producer takes a submitted URL that is already a feed's (normalized) URL as it is, so a
// normalized URL must normalize to itself.
TEST(FeedUrl, NormalizingTwiceChangesNothing) {
  for (const char* raw : {"HTTP://Example.COM:80/Feed?x=1#top", "https://example.com:443", "http://a.test",
                          "http://a.test/a/../b/./c", "http://user:pw@a.test:8080/p?q=a%20b&r",
                          "http://[::1]:8080/x", "http://a.test/%7Efeed/ünï"}) {
    auto once = normalize_feed_url(raw);
    ASSERT_TRUE(once) << raw;
    EXPECT_EQ(normalize_feed_url(*once), once) << raw;
  }
  // A '%' left in the host by decoding is refused (found by fuzzing: each pass decoded another
  // "%33", so the URL never settled).
  for (const char* raw : {"http://plef%%%333elev/a", "http://a%25b/", "http://a%%33b/"}) {
    std::string why;
    EXPECT_EQ(normalize_feed_url(raw, &why), std::nullopt) << raw;
    EXPECT_NE(why.find("host"), std::string::npos) << why;
  }
  // A host spelled in %XX decodes to an IPv4 number that only the next pass canonicalizes
  // (found by fuzzing: "http:///%31" gave "http://1/", then "http://0.0.0.1/").
  EXPECT_EQ(normalize_feed_url("http:///%31"), "http://0.0.0.1/");
  EXPECT_EQ(normalize_feed_url("http://%31%32%37.1:8080/f"), "http://127.0.0.1:8080/f");
  EXPECT_EQ(normalize_feed_url("http://127.0.0.1:8080/f"), "http://127.0.0.1:8080/f");
}

TEST(KafkaMessages, JobAndEventMessagesReadBackAsWritten) {
  JobMessage job{42, "01ab\"cd", 7, "http://a.test/feed?x=\"1\"&y=\\", 9, "", "", ""};
  JobMessage back = job_message_from_json(serialize(job));
  EXPECT_EQ(back.job_id, 42);
  EXPECT_EQ(back.batch_id, job.batch_id);
  EXPECT_EQ(back.position, 7);
  EXPECT_EQ(back.url, job.url);
  EXPECT_EQ(back.feed_id, 9);
  EXPECT_TRUE(nlohmann::json::accept(serialize(JobMessage{1, "b", 0, "http://a.test/\x01\xff", 2, "", "", ""})));

  // A newer producer's extra fields are skipped, whatever their values hold.
  JobMessage extra = job_message_from_json(
      R"({"v":2,"url":"http://a.test/","trace":{"url":"x","job_id":"y","n":[1,{"feed_id":3}]},)"
      R"("job_id":5,"batch_id":"b","position":0,"feed_id":8,"tags":["a",null,true,1.5]})");
  EXPECT_EQ(extra.job_id, 5);
  EXPECT_EQ(extra.url, "http://a.test/");
  EXPECT_EQ(extra.feed_id, 8);
  auto refused = [](std::string_view payload) {
    try {
      job_message_from_json(payload);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(refused("[1,2]"), "job message is not a JSON object");
  EXPECT_EQ(refused("42"), "job message is not a JSON object");
  EXPECT_EQ(refused(R"({"job_id":1,)"), "job message is not valid JSON");
  EXPECT_EQ(refused(R"({"job_id":1,"batch_id":"b","position":0,"url":"u"})"),
            "job message has no \"feed_id\" of the right type");
  EXPECT_EQ(refused(R"({"job_id":"1","batch_id":"b","position":0,"url":"u","feed_id":1})"),
            "job message has no \"job_id\" of the right type");
  EXPECT_EQ(refused(R"({"job_id":1,"batch_id":"b","position":0,"url":{"u":1},"feed_id":1})"),
            "job message has no \"url\" of the right type");

  EventMessage event{"01ab", 3, "job.completed", R"({"position":2,"status":"ok"})"};
  EventMessage read = event_message_from_json(serialize(event));
  EXPECT_EQ(read.batch_id, "01ab");
  EXPECT_EQ(read.seq, 3);
  EXPECT_EQ(read.type, "job.completed");
  EXPECT_EQ(nlohmann::json::parse(read.data), nlohmann::json::parse(event.data));
}

TEST(KafkaMessages, EventMessagesKeepTheirDataAsWrittenAndOtherSpellingsStillParse) {
  const EventMessage event{"01ab", 3, "job.completed",
                           R"({"position":2,"url":"http://a.test/f?x=\"}\"","progress":{"total":4,"done":3}})"};
  EventMessage read = event_message_from_json(serialize(event));
  EXPECT_EQ(read.batch_id, "01ab");
  EXPECT_EQ(read.seq, 3);
  EXPECT_EQ(read.type, "job.completed");
  EXPECT_EQ(read.data, event.data);  // byte for byte: what SQLite stored, as replays send it

  read = event_message_from_json(
      R"( { "data" : {"a": [1, "}]"]} , "seq":5, "event":"job.failed", "batch_id":"b1" } )");
  EXPECT_EQ(read.batch_id, "b1");
  EXPECT_EQ(read.seq, 5);
  EXPECT_EQ(read.type, "job.failed");
  EXPECT_EQ(read.data, R"({"a": [1, "}]"]})");
  // Escapes, other fields, a repeated field: the full parser's readings.
  EXPECT_EQ(event_message_from_json(R"({"batch_id":"b\u0031","seq":1,"event":"e","data":{}})").batch_id, "b1");
  EXPECT_EQ(event_message_from_json(R"({"batch_id":"b","seq":1,"event":"e","data":{},"x":[1]})").data, "{}");
  EXPECT_EQ(event_message_from_json(R"({"batch_id":"a","batch_id":"b","seq":1,"event":"e","data":{}})").batch_id, "b");

  for (const char* bad : {R"({"batch_id":"b","seq":1,"event":"e","data":{"a":}})",
                          R"({"batch_id":"b","seq":1,"event":"e","data":{}} x)",
                          R"({"batch_id":"b","seq":1,"event":"e","data":{},})",
                          R"({"batch_id":"b","seq":1,"event":"e"})",
                          R"({"batch_id":"b","seq":"1","event":"e","data":{}})",
                          R"({"batch_id":"b","seq":7.0,"event":"e","data":{}})",
                          R"({"batch_id":"b","seq":21666666666666666666,"event":"e","data":{}})",
                          R"({"batch_id":"b","seq":9223372036854775808,"event":"e","data":{}})",
                          R"({"batch_id":"b)", "[]", ""})
    EXPECT_THROW(event_message_from_json(bad), std::invalid_argument) << bad;
}

TEST(JsonFields, SplitsAnObjectsTopLevelIntoKeysAndRawValues) {
  std::vector<std::pair<std::string, std::string>> fields;
  auto collect = [&](std::string_view key, std::string_view raw) {
    fields.emplace_back(key, raw);
    return true;
  };
  ASSERT_TRUE(split_json_object(R"({"k":"a\"}b", "o" :{"x":"}"},"n":-1.5e3,"t":true,"l":[1,[2]]})", collect));
  std::vector<std::pair<std::string, std::string>> expected{
      {"k", R"("a\"}b")"}, {"o", R"({"x":"}"})"}, {"n", "-1.5e3"}, {"t", "true"}, {"l", "[1,[2]]"}};
  EXPECT_EQ(fields, expected);
  fields.clear();
  EXPECT_TRUE(split_json_object(" {} ", collect));
  EXPECT_TRUE(fields.empty());
  for (const char* not_split : {R"({"a\u0062":1})", R"({"a":1,})", R"({"a":1} {})", R"({"a":"1})",
                                R"({"a":{"b":1})", R"({"a" 1})", R"(["a"])", ""})
    EXPECT_FALSE(split_json_object(not_split, collect)) << not_split;
  EXPECT_FALSE(split_json_object(R"({"a":1,"b":2})", [](std::string_view key, std::string_view) { return key != "b"; }));
}

TEST(KafkaMessages, JobMessagesCarryTheFeedsValidatorsAndOldOnesStillParse) {
  JobMessage job{42, "b", 7, "http://a.test/feed", 9, "W/\"e\\1\"", "Mon, 01 Jan 2024 12:00:00 GMT",
                 "2030-01-01T00:00:00Z"};
  const std::string text = serialize(job);
  EXPECT_TRUE(nlohmann::json::accept(text)) << text;
  JobMessage back = job_message_from_json(text);
  EXPECT_EQ(back.job_id, 42);
  EXPECT_EQ(back.feed_id, 9);
  EXPECT_EQ(back.etag, job.etag);
  EXPECT_EQ(back.last_modified, job.last_modified);
  EXPECT_EQ(back.not_before, job.not_before);

  // Empty validators are left out of the message.
  const std::string bare = serialize(JobMessage{1, "b", 0, "http://a.test/", 2, "", "", ""});
  EXPECT_EQ(bare.find("etag"), std::string::npos) << bare;
  EXPECT_EQ(bare.find("not_before"), std::string::npos) << bare;

  // A message of a producer before the validators existed, and one with null or mistyped ones.
  JobMessage old = job_message_from_json(R"({"job_id":5,"batch_id":"b","position":0,"url":"u","feed_id":8})");
  EXPECT_EQ(old.job_id, 5);
  EXPECT_TRUE(old.etag.empty() && old.last_modified.empty() && old.not_before.empty());
  JobMessage odd = job_message_from_json(
      R"({"job_id":5,"batch_id":"b","position":0,"url":"u","feed_id":8,"etag":null,"last_modified":3,"not_before":"x"})");
  EXPECT_TRUE(odd.etag.empty());
  EXPECT_EQ(odd.not_before, "x");
}

TEST(FeedUrl, ResolvesReferences) {
  EXPECT_EQ(resolve_url("http://a.test/x/y.xml", "../z.html"), "http://a.test/z.html");
  EXPECT_EQ(resolve_url("http://a.test/x/", "/abs"), "http://a.test/abs");
  EXPECT_EQ(resolve_url("http://a.test/x/", "https://b.test/"), "https://b.test/");
  EXPECT_EQ(resolve_url("", "rel.html"), "rel.html");
}

TEST(Settings, FlagsWinOverEnvironmentAndDefaults) {
  Settings s("test", "summary");
  s.add("http", "127.0.0.1:8080", "listen").add("fetch-attempts", "3", "n").add_switch("allow-private-networks", "x");
  setenv("FEEDPIPE_FETCH_ATTEMPTS", "7", 1);
  setenv("FEEDPIPE_ALLOW_PRIVATE_NETWORKS", "true", 1);
  std::vector<std::string> args{"--http=0.0.0.0:9"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ASSERT_TRUE(s.parse(static_cast<int>(argv.size()), argv.data()));
  EXPECT_EQ(s.str("http"), "0.0.0.0:9");
  EXPECT_EQ(s.integer("fetch-attempts"), 7);
  EXPECT_TRUE(s.on("allow-private-networks"));
  unsetenv("FEEDPIPE_FETCH_ATTEMPTS");
  unsetenv("FEEDPIPE_ALLOW_PRIVATE_NETWORKS");
  EXPECT_NE(s.help().find("FEEDPIPE_FETCH_ATTEMPTS"), std::string::npos);
  std::vector<std::string> bad{"--nope"};
  std::vector<char*> bad_argv{bad[0].data()};
  Settings t("test", "summary");
  EXPECT_THROW(t.parse(1, bad_argv.data()), ConfigError);
  EXPECT_THROW(parse_host_port("nohost", "http"), ConfigError);
  EXPECT_EQ(parse_host_port("[::1]:80", "http").first, "::1");
}

TEST(OffsetTracker, CommitsOnlyUpToTheLowestJobInFlight) {
  consumer::OffsetTracker t;
  t.assign(0);
  for (int64_t o : {10, 11, 12}) t.taken(0, o);
  EXPECT_EQ(t.to_commit()[0].offset, 10);
  t.done(0, 11);
  EXPECT_TRUE(t.to_commit().empty());  // 10 still in flight
  t.done(0, 10);
  auto c = t.to_commit();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].offset, 12);
  t.done(0, 12);
  EXPECT_EQ(t.to_commit()[0].offset, 13);
  t.taken(0, 13);
  auto revoked = t.revoke({0});
  EXPECT_TRUE(revoked.empty());  // 13 in flight: the committed 13 stands, the job is redelivered
  t.done(0, 13);                 // a late outcome for a revoked partition is ignored
  EXPECT_EQ(t.in_flight(), 0u);
}

TEST(OffsetTracker, ConcurrentDoneCallsAreSafe) {
  consumer::OffsetTracker t;
  t.assign(1);
  for (int64_t o = 0; o < 1000; ++o) t.taken(1, o);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int64_t o = k; o < 1000; o += 4) t.done(1, o);
    });
  std::thread committer([&] {
    for (int i = 0; i < 100; ++i) t.to_commit();
  });
  for (auto& th : threads) th.join();
  committer.join();
  t.to_commit();
  EXPECT_EQ(t.in_flight(), 0u);
}

}  // namespace
}  // namespace feedpipe
