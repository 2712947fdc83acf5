// `feedpipe standalone` as a user runs it: a real process with its embedded broker, a local
// feed server, real SSE clients.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/db.h"
#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

class StandaloneTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  void start(const std::vector<std::string>& extra = {}) {
    port_ = free_port();
    std::vector<std::string> args{"--allow-private-networks", "--consumers", "2", "--heartbeat-ms", "500",
                                  "--fetch-retry-delay-ms", "50", "--fetch-max-host-connections", "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = start_standalone(dir_, port_, args);
    ASSERT_TRUE(wait_ready(port_)) << process_->log();
  }

  std::vector<std::string> feed_urls(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_.url(i));
    return urls;
  }

  TempDir dir_;
  FeedServer feeds_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

TEST_F(StandaloneTest, BatchStreamsEveryJobOnceInOrderThenCompletes) {
  std::string batch = submit_batch(port_, feed_urls(0, 200));
  ASSERT_FALSE(batch.empty());
  auto stream = read_sse(port_, "/v1/batches/" + batch + "/events", 60s);
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(stream.retry, "3000");
  expect_complete_stream(stream, 200);
  for (size_t i = 0; i + 1 < stream.events.size(); ++i) {
    EXPECT_EQ(stream.events[i].event, "job.completed") << stream.events[i].data.dump();
    EXPECT_EQ(stream.events[i].data["status"], "ok");
    EXPECT_EQ(stream.events[i].data["items_new"], 5);
    EXPECT_EQ(stream.events[i].data["progress"]["done"], stream.events[i].id);
  }
  EXPECT_EQ(stream.events.back().data["progress"]["done"], 200);

  // The snapshot agrees, carries an ETag, and answers If-None-Match with 304.
  httplib::Client client("127.0.0.1", port_);
  auto res = client.Get("/v1/batches/" + batch);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto snap = nlohmann::json::parse(res->body);
  EXPECT_EQ(snap["status"], "completed");
  EXPECT_EQ(snap["total"], 200);
  EXPECT_EQ(snap["done"], 200);
  EXPECT_EQ(snap["failed"], 0);
  ASSERT_EQ(snap["jobs"].size(), 200u);
  EXPECT_EQ(snap["jobs"][7]["position"], 7);
  EXPECT_EQ(snap["jobs"][7]["url"], feeds_.url(7));
  EXPECT_EQ(snap["jobs"][7]["items_total"], 5);
  std::string etag = res->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  auto not_modified = client.Get("/v1/batches/" + batch, {{"If-None-Match", etag}});
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304);

  // A subscriber arriving after the end gets the whole history.
  expect_complete_stream(read_sse(port_, "/v1/batches/" + batch + "/events", 20s), 200);

  // The same feeds again: every job is a conditional GET answered 304.
  std::string again = submit_batch(port_, feed_urls(0, 200));
  expect_complete_stream(read_sse(port_, "/v1/batches/" + again + "/events", 60s), 200);
  auto second = get_json(port_, "/v1/batches/" + again);
  for (const auto& job : second["jobs"]) {
    EXPECT_EQ(job["status"], "not_modified");
    EXPECT_EQ(job["items_new"], 0);
    EXPECT_EQ(job["items_total"], 5);
  }

  // Prometheus metrics count the outcomes.
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("feedpipe_jobs_total{status=\"ok\"} 200\n"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("feedpipe_jobs_total{status=\"not_modified\"} 200\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("feedpipe_items_stored_total 1000\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("feedpipe_fetch_duration_seconds_count"), std::string::npos);
  EXPECT_NE(metrics->body.find("feedpipe_sse_streams_open"), std::string::npos);
  EXPECT_NE(metrics->body.find("process_resident_memory_bytes"), std::string::npos);
  // The streams read above were counted: 201 events live, 201 replayed, 201 of the second batch.
  auto sample = [&](const std::string& series) {
    size_t at = metrics->body.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::stod(metrics->body.substr(at + series.size() + 2));
  };
  EXPECT_GE(sample("feedpipe_events_delivered_total"), 603) << metrics->body;
  EXPECT_GT(sample("feedpipe_event_delivery_latency_seconds_count"), 0) << metrics->body;
  // Every committed event reached the hub in process: two batches of 200 jobs + batch.completed.
  EXPECT_GE(sample("feedpipe_event_arrival_lag_seconds_count"), 402) << metrics->body;
  EXPECT_GE(sample("feedpipe_retention_pruned_total{kind=\"batches\"}"), 0) << metrics->body;

  // Stored items are readable per feed, newest first.
  auto items = get_json(port_, "/v1/feeds/" + std::to_string(snap["jobs"][7]["feed_id"].get<int>()) + "/items?limit=2");
  ASSERT_EQ(items["items"].size(), 2u);
  EXPECT_EQ(items["items"][0]["guid"], "feed-7-item-0");
  EXPECT_FALSE(items["next_after"].is_null());

  // The writers skip SQLite's foreign-key checks (they write only children of rows they read):
  // every reference still holds.
  Database db(dir_.file("feedpipe.db"));
  auto check = db.prepare("PRAGMA foreign_key_check");
  EXPECT_FALSE(check.step()) << "a row of " << check.text(0) << " refers to a missing " << check.text(2);
}

TEST_F(StandaloneTest, LastEventIdResumesWithoutGapOrRepeat) {
  feeds_.hold_requests(true);
  std::string batch = submit_batch(port_, feed_urls(1000, 60));
  std::thread release([&] {
    std::this_thread::sleep_for(300ms);
    feeds_.hold_requests(false);
  });
  auto first = read_sse(port_, "/v1/batches/" + batch + "/events", 30s, {}, 20);
  release.join();
  ASSERT_EQ(first.events.size(), 20u);
  int64_t last = first.events.back().id;
  auto rest = read_sse(port_, "/v1/batches/" + batch + "/events", 30s,
                       {{"Last-Event-ID", std::to_string(last)}});
  ASSERT_FALSE(rest.events.empty());
  EXPECT_EQ(rest.events.front().id, last + 1);
  SseResult all;
  all.events = first.events;
  all.events.insert(all.events.end(), rest.events.begin(), rest.events.end());
  all.closed_by_server = rest.closed_by_server;
  expect_complete_stream(all, 60);

  // The query-parameter form and the JSON page for polling clients.
  auto tail = read_sse(port_, "/v1/batches/" + batch + "/events?last_event_id=59", 10s);
  ASSERT_EQ(tail.events.size(), 2u);
  EXPECT_EQ(tail.events[0].id, 60);
  httplib::Client client("127.0.0.1", port_);
  auto page = client.Get("/v1/batches/" + batch + "/events?after=55", {{"Accept", "application/json"}});
  ASSERT_TRUE(page);
  auto body = nlohmann::json::parse(page->body);
  ASSERT_EQ(body["events"].size(), 6u);
  EXPECT_EQ(body["events"][0]["id"], 56);
  EXPECT_EQ(body["next_after"], 61);
  EXPECT_EQ(body["done"], true);
}

TEST_F(StandaloneTest, BadUrlsFailTheirJobsButNotTheBatch) {
  std::vector<std::string> feeds{feeds_.url(1), "not a url", "ftp://example.test/feed",
                                 "http://127.0.0.1:" + std::to_string(feeds_.port()) + "/missing", feeds_.url(1)};
  std::string batch = submit_batch(port_, feeds);
  auto stream = read_sse(port_, "/v1/batches/" + batch + "/events", 30s);
  expect_complete_stream(stream, feeds.size());
  auto snap = get_json(port_, "/v1/batches/" + batch);
  EXPECT_EQ(snap["status"], "completed");
  EXPECT_EQ(snap["failed"], 3);
  EXPECT_EQ(snap["jobs"][0]["status"], "ok");
  EXPECT_EQ(snap["jobs"][4]["status"], "ok");  // the same feed twice: one fetch, two outcomes
  EXPECT_EQ(feeds_.requests("/feed/1.xml"), 1);
  EXPECT_EQ(snap["jobs"][1]["status"], "failed");
  EXPECT_NE(snap["jobs"][1]["error"].get<std::string>().find("invalid feed URL"), std::string::npos);
  EXPECT_NE(snap["jobs"][2]["error"].get<std::string>().find("scheme"), std::string::npos);
  EXPECT_EQ(snap["jobs"][3]["status"], "failed");
  EXPECT_EQ(snap["jobs"][3]["http_status"], 404);
}

// Asserts DESIGN.md's refusal shape: the status, and {"error":{"code","message"}} with that code.
void expect_refusal(const httplib::Result& res, int status, const std::string& code, const std::string& what) {
  ASSERT_TRUE(res) << what << ": no answer (" << httplib::to_string(res.error()) << ")";
  EXPECT_EQ(res->status, status) << what;
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  ASSERT_TRUE(body.is_object() && body["error"].is_object()) << what << ": " << res->body.substr(0, 200);
  EXPECT_EQ(body["error"]["code"], code) << what << ": " << res->body;
  EXPECT_TRUE(body["error"]["message"].is_string() && !body["error"]["message"].get<std::string>().empty())
      << what << ": " << res->body;
  EXPECT_NE(res->get_header_value("Content-Type").find("application/json"), std::string::npos) << what;
}

TEST_F(StandaloneTest, RefusesMalformedRequestsWithJsonErrors) {
  // A batch accepted before the refusals, held at the feed server until they are done.
  feeds_.hold_requests(true);
  std::string accepted = submit_batch(port_, feed_urls(4000, 5));
  ASSERT_FALSE(accepted.empty());

  httplib::Client client("127.0.0.1", port_);
  auto many_urls = [](int n) {
    std::string body = R"({"feeds":[)";
    for (int i = 0; i < n; ++i) body += (i ? ",\"http://x.test/" : "\"http://x.test/") + std::to_string(i) + "\"";
    return body + "]}";
  };
  struct Case {
    std::string body;
    int status;
    std::string code;
  };
  for (const auto& c : std::vector<Case>{{"{", 400, "malformed_json"},
                                         {"[1]", 400, "invalid_request"},
                                         {R"({"feeds":"x"})", 400, "invalid_request"},
                                         {R"({"feeds":[1]})", 400, "invalid_request"},
                                         {R"({"other":[]})", 400, "invalid_request"},
                                         {R"({"feeds":[]})", 422, "empty_batch"},
                                         {many_urls(10001), 413, "batch_too_large"},
                                         {many_urls(200000), 413, "batch_too_large"},
                                         {std::string(1 << 20, '['), 400, "invalid_request"}}) {
    expect_refusal(client.Post("/v1/batches", c.body, "application/json"), c.status, c.code,
                   "POST " + c.body.substr(0, 40) + " (" + std::to_string(c.body.size()) + " bytes)");
  }
  // A body over --http-max-body-bytes (16 MiB) is refused from its Content-Length.
  expect_refusal(client.Post("/v1/batches", std::string((16u << 20) + 1, ' '), "application/json"), 413,
                 "body_too_large", "a 16 MiB + 1 body");

  expect_refusal(client.Get("/v1/batches/doesnotexist"), 404, "batch_not_found", "unknown batch");
  expect_refusal(client.Get("/v1/batches/doesnotexist/events", {{"Accept", "text/event-stream"}}), 404,
                 "batch_not_found", "events of an unknown batch");
  expect_refusal(client.Get("/v1/feeds/99999999999999999999999"), 404, "feed_not_found", "feed id beyond int64");
  expect_refusal(client.Get("/v1/nothing-here"), 404, "not_found", "unknown path");

  // Wrong methods: 405 with the JSON shape and an Allow header, on every API path.
  const std::string batch_path = "/v1/batches/" + accepted;
  auto call = [&](const std::string& method, const std::string& path) {
    if (method == "POST") return client.Post(path, "{}", "application/json");
    if (method == "PUT") return client.Put(path, "{}", "application/json");
    if (method == "PATCH") return client.Patch(path, "{}", "application/json");
    return client.Delete(path);
  };
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"DELETE", "/v1/batches"}, {"PUT", "/v1/batches"}, {"PATCH", batch_path}, {"POST", batch_path},
           {"DELETE", batch_path}, {"POST", batch_path + "/events"}, {"DELETE", "/v1/feeds/1"},
           {"PUT", "/v1/feeds/1/items"}}) {
    auto res = call(method, path);
    expect_refusal(res, 405, "method_not_allowed", method + " " + path);
    if (res) {
      EXPECT_NE(res->get_header_value("Allow").find("GET"), std::string::npos) << method << " " << path;
    }
  }

  // Still serving, and the batch accepted before completes.
  int status = 0;
  get_json(port_, "/healthz", &status);
  EXPECT_EQ(status, 200);
  feeds_.hold_requests(false);
  expect_complete_stream(read_sse(port_, "/v1/batches/" + accepted + "/events", 30s), 5);
  auto snap = get_json(port_, "/v1/batches/" + accepted);
  EXPECT_EQ(snap["status"], "completed");
  EXPECT_EQ(snap["failed"], 0);
}

// Several event loops on one port (SO_REUSEPORT): every stream, whichever loop the kernel gave
// it to, gets its batch whole, and the API behind the loops still answers.
TEST_F(StandaloneTest, StreamsSpreadOverSeveralLoopsEachGetTheirBatchWhole) {
  process_->kill(SIGTERM);
  ASSERT_EQ(process_->wait_exit(20s), 0) << process_->log();
  start({"--stream-loops", "3"});
  EXPECT_NE(process_->log().find("3 stream loop(s)"), std::string::npos) << process_->log();
  feeds_.hold_requests(true);
  std::vector<std::string> batches;
  for (int b = 0; b < 3; ++b) batches.push_back(submit_batch(port_, feed_urls(5000 + b * 20, 20)));
  constexpr int kStreams = 48;
  std::vector<SseResult> streams(kStreams);
  std::vector<std::thread> readers;
  for (int i = 0; i < kStreams; ++i)
    readers.emplace_back([&, i] { streams[i] = read_sse(port_, "/v1/batches/" + batches[i % 3] + "/events", 60s); });
  for (int i = 0; i < 30; ++i) {  // the API, forwarded by whichever loop takes the connection
    int status = 0;
    get_json(port_, "/v1/batches/" + batches[i % 3], &status);
    EXPECT_EQ(status, 200);
  }
  feeds_.hold_requests(false);
  for (auto& t : readers) t.join();
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE("stream " + std::to_string(i));
    expect_complete_stream(streams[i], 20);
  }
}

TEST_F(StandaloneTest, RestartCompletesUnfinishedBatchAndStreamResumes) {
  feeds_.hold_requests(true);
  std::string batch = submit_batch(port_, feed_urls(2000, 40));
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() > 0; }, 20s));
  process_->kill(SIGKILL);
  process_->wait_exit(10s);
  feeds_.hold_requests(false);
  start();
  auto stream = read_sse(port_, "/v1/batches/" + batch + "/events", 60s);
  expect_complete_stream(stream, 40);
  EXPECT_EQ(get_json(port_, "/v1/batches/" + batch)["status"], "completed");
}

// The operator's check of issue 6: 600 feeds answering in 40 ms, SIGKILL after 200 jobs, a
// restart on the same database, and a client that reconnects with Last-Event-ID.
TEST_F(StandaloneTest, KilledMidBatchCompletesAfterRestartAndAReconnectingClientMissesNothing) {
  feeds_.set_delay(40ms);
  // Only 250 fetches are answered before the kill, so the batch cannot finish first however
  // fast the machine is.
  feeds_.hold_requests_after(250);
  std::string batch = submit_batch(port_, feed_urls(3000, 600));
  const std::string path = "/v1/batches/" + batch + "/events";
  SseResult before;
  std::thread reader([&] { before = read_sse(port_, path, 120s); });
  bool reached = wait_until([&] { return get_json(port_, "/v1/batches/" + batch).value("done", 0) >= 200; }, 60s);
  process_->kill(SIGKILL);
  process_->wait_exit(10s);
  reader.join();
  ASSERT_TRUE(reached);
  ASSERT_FALSE(before.events.empty());
  ASSERT_LT(before.events.size(), 601u) << "the batch finished before the kill; nothing was tested";

  feeds_.hold_requests(false);
  start();
  auto after = read_sse(port_, path, 120s, {{"Last-Event-ID", std::to_string(before.events.back().id)}});
  SseResult whole = after;
  whole.events.insert(whole.events.begin(), before.events.begin(), before.events.end());
  expect_complete_stream(whole, 600);

  auto snapshot = get_json(port_, "/v1/batches/" + batch);
  EXPECT_EQ(snapshot["status"], "completed");
  EXPECT_EQ(snapshot["done"], 600);
  EXPECT_EQ(snapshot["failed"], 0);
  const std::string db = dir_.file("feedpipe.db");
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM events WHERE batch_id = '" + batch + "'"), 601);
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM jobs WHERE status NOT IN ('ok', 'not_modified', 'failed')"), 0);
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM items"), 600 * 5);
  EXPECT_EQ(integrity_check(db), "ok");
}

TEST_F(StandaloneTest, SigtermHandsBackJobsInFlightAndExitsZeroWithinTheDrainTimeout) {
  process_->kill(SIGTERM);
  ASSERT_EQ(process_->wait_exit(20s), 0) << process_->log();
  start({"--drain-timeout-ms", "2000", "--shutdown-grace-ms", "500"});
  feeds_.hold_requests(true);
  std::string batch = submit_batch(port_, feed_urls(4000, 30));
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() >= 30; }, 30s)) << feeds_.total_requests();
  auto signalled = std::chrono::steady_clock::now();
  process_->kill(SIGTERM);
  EXPECT_EQ(process_->wait_exit(20s), 0) << process_->log();
  // Grace 0.5 s + drain 2 s, plus stopping; the held fetches would have kept it 20 s.
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 15s);

  feeds_.hold_requests(false);
  start();
  expect_complete_stream(read_sse(port_, "/v1/batches/" + batch + "/events", 60s), 30);
  EXPECT_EQ(integrity_check(dir_.file("feedpipe.db")), "ok");
}

// The binary runs on the malloc its build chose (CMake's FEEDPIPE_MALLOC; common/memory_trimmer.h):
// jemalloc by default, glibc's in the sanitizer builds.
TEST_F(StandaloneTest, RunsOnTheMallocItsBuildChose) {
  std::ifstream maps("/proc/" + std::to_string(process_->pid()) + "/maps");
  std::stringstream contents;
  contents << maps.rdbuf();
  const bool on_jemalloc = contents.str().find("/libjemalloc.so") != std::string::npos;
  EXPECT_EQ(on_jemalloc, FEEDPIPE_LINKS_JEMALLOC == 1) << feedpipe_binary();
}

// A batch runs from its first job taken. Its jobs are written as running only once they have
// gone --job-running-after-ms without an outcome; a job done sooner goes from queued straight to
// its outcome, a row update fewer.
TEST_F(StandaloneTest, AJobIsWrittenRunningOnlyAfterTheRunningDelayAndAQuickOneNever) {
  process_->kill(SIGTERM);
  ASSERT_EQ(process_->wait_exit(20s), 0) << process_->log();
  start({"--job-running-after-ms", "3000"});
  const std::string db = dir_.file("feedpipe.db");
  auto snapshot = [&](const std::string& batch) { return get_json(port_, "/v1/batches/" + batch); };

  feeds_.hold_requests(true);
  const auto submitted = std::chrono::steady_clock::now();
  const std::string held = submit_batch(port_, feed_urls(5000, 1));
  ASSERT_FALSE(held.empty());
  ASSERT_TRUE(wait_until([&] { return snapshot(held)["status"] == "running"; }, 30s)) << snapshot(held).dump();
  ASSERT_TRUE(wait_until([&] { return snapshot(held)["jobs"][0]["status"] == "running"; }, 30s))
      << snapshot(held).dump();
  // Taken after it was submitted, so written running no sooner than the delay after that.
  EXPECT_GE(std::chrono::steady_clock::now() - submitted, 3s);
  feeds_.hold_requests(false);
  expect_complete_stream(read_sse(port_, "/v1/batches/" + held + "/events", 60s), 1);
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM jobs WHERE batch_id = '" + held + "' AND started_at IS NOT NULL"), 1);

  const std::string quick = submit_batch(port_, feed_urls(5100, 20));
  expect_complete_stream(read_sse(port_, "/v1/batches/" + quick + "/events", 60s), 20);
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM jobs WHERE batch_id = '" + quick + "' AND started_at IS NOT NULL"), 0);
}

TEST_F(StandaloneTest, SubmitWatchFollowsABatchToTheEnd) {
  std::vector<std::string> args{"submit", "--api", "http://127.0.0.1:" + std::to_string(port_), "--watch"};
  for (const auto& url : feed_urls(3000, 30)) args.push_back(url);
  Process submit("submit", args, dir_.file("submit.log"));
  EXPECT_EQ(submit.wait_exit(60s), 0) << submit.log();
  std::string batch = submit.first_line(5s);
  ASSERT_FALSE(batch.empty());
  auto snap = get_json(port_, "/v1/batches/" + batch);
  EXPECT_EQ(snap["status"], "completed");
  EXPECT_EQ(snap["done"], 30);
  // stdout is not a terminal: the batch id, one line per job, then the summary.
  std::istringstream lines(submit.output());
  std::vector<std::string> out;
  for (std::string line; std::getline(lines, line);) out.push_back(line);
  ASSERT_EQ(out.size(), 32u) << submit.output();
  EXPECT_EQ(out[0], batch);
  std::set<std::string> urls;
  for (size_t i = 1; i <= 30; ++i) {
    EXPECT_EQ(out[i].rfind("ok\t", 0), 0u) << out[i];
    urls.insert(out[i].substr(3));
  }
  auto submitted = feed_urls(3000, 30);
  EXPECT_EQ(urls, std::set<std::string>(submitted.begin(), submitted.end()));
  EXPECT_EQ(out[31].rfind("30/30 done, 0 failed in ", 0), 0u) << out[31];
  EXPECT_NE(out[31].find(" feeds/s)"), std::string::npos) << out[31];
  EXPECT_EQ(submit.output().find('\r'), std::string::npos) << "no progress bar without a terminal";

  // A failed job makes the exit code 1.
  std::string missing = "http://127.0.0.1:" + std::to_string(feeds_.port()) + "/missing";
  Process failing("submit", {"submit", "--api", "http://127.0.0.1:" + std::to_string(port_), "--watch", missing},
                  dir_.file("submit-failing.log"));
  EXPECT_EQ(failing.wait_exit(60s), 1) << failing.log();
  EXPECT_NE(failing.output().find("failed\t" + missing + "\t"), std::string::npos) << failing.output();
  EXPECT_NE(failing.output().find("1/1 done, 1 failed"), std::string::npos) << failing.output();
}

TEST_F(StandaloneTest, SubmitReadsUrlsFromStdin) {
  std::string list = dir_.file("feeds.txt");
  {
    std::ofstream out(list);
    out << "# feeds to refresh\n\n" << feeds_.url(3100) << "\n   \n  " << feeds_.url(3101) << "  \r\n"
        << "# " << feeds_.url(3199) << " is commented out\n" << feeds_.url(3102);  // no final newline
  }
  Process submit("submit", {"submit", "--api", "http://127.0.0.1:" + std::to_string(port_), "--watch", "-"},
                 dir_.file("submit-stdin.log"), list);
  EXPECT_EQ(submit.wait_exit(60s), 0) << submit.log();
  std::string batch = submit.first_line(5s);
  ASSERT_FALSE(batch.empty()) << submit.log();
  auto snap = get_json(port_, "/v1/batches/" + batch);
  ASSERT_EQ(snap["total"], 3) << snap.dump();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(snap["jobs"][i]["url"], feeds_.url(3100 + i));
  EXPECT_NE(submit.output().find("3/3 done, 0 failed"), std::string::npos) << submit.output();

  // Nothing but comments: a usage error, nothing submitted.
  std::string empty = dir_.file("empty.txt");
  std::ofstream(empty) << "# nothing\n\n";
  Process nothing("submit", {"submit", "--api", "http://127.0.0.1:" + std::to_string(port_), "-"},
                  dir_.file("submit-empty.log"), empty);
  EXPECT_EQ(nothing.wait_exit(10s), 2);
  EXPECT_NE(nothing.log().find("at least one feed URL"), std::string::npos) << nothing.log();
}

TEST_F(StandaloneTest, ServesThePages) {
  httplib::Client client("127.0.0.1", port_);
  auto index = client.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_NE(index->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto page = client.Get("/batches/anything");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("data-testid"), std::string::npos);

  // The API's description, as JSON and (the same document: JSON is YAML) as YAML.
  auto openapi = client.Get("/openapi.json");
  ASSERT_TRUE(openapi);
  EXPECT_EQ(openapi->status, 200);
  EXPECT_NE(openapi->get_header_value("Content-Type").find("application/json"), std::string::npos);
  auto doc = nlohmann::json::parse(openapi->body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_TRUE(doc["paths"].contains("/v1/batches/{id}/events"));
  auto yaml = client.Get("/openapi.yaml");
  ASSERT_TRUE(yaml);
  EXPECT_EQ(yaml->status, 200);
  EXPECT_EQ(yaml->body, openapi->body);
}

// docs/openapi.json stays true: every operation it lists answers on a running server with the
// status it documents for success.
TEST_F(StandaloneTest, EveryOperationInTheOpenApiDocumentAnswers) {
  std::string batch = submit_batch(port_, feed_urls(5000, 1));
  expect_complete_stream(read_sse(port_, "/v1/batches/" + batch + "/events", 30s), 1);
  int64_t feed_id = get_json(port_, "/v1/batches/" + batch)["jobs"][0]["feed_id"];
  auto doc = get_json(port_, "/openapi.json");
  ASSERT_TRUE(doc.is_object());
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(10, 0);
  int checked = 0;
  for (const auto& [path, operations] : doc["paths"].items()) {
    std::string target = path;
    auto fill = [&](const std::string& name, const std::string& value) {
      if (auto at = target.find(name); at != std::string::npos) target.replace(at, name.size(), value);
    };
    fill("{id}", path.rfind("/v1/feeds/", 0) == 0 ? std::to_string(feed_id) : batch);
    for (const auto& [method, operation] : operations.items()) {
      if (method == "options") continue;  // CORS preflights answer with --cors-origins: access_test.cpp
      std::string success = operation["responses"].contains("202") ? "202" : "200";
      ASSERT_TRUE(operation["responses"].contains(success)) << method << " " << path;
      if (method != "get" && method != "post") {
        ADD_FAILURE() << "no request written for " << method << " " << path;
        continue;
      }
      httplib::Headers headers;
      if (path == "/v1/batches/{id}/events" || path == "/v1/events") headers.emplace("Accept", "text/event-stream");
      if (path == "/v1/events") target += "?batch=" + batch;  // completed: its whole stream, then the end
      auto res = method == "get" ? client.Get(target, headers)
                                 : client.Post(target, nlohmann::json{{"feeds", {feeds_.url(5001)}}}.dump(),
                                               "application/json");
      ASSERT_TRUE(res) << method << " " << target;
      EXPECT_EQ(std::to_string(res->status), success) << method << " " << target << ": " << res->body;
      ++checked;
    }
  }
  EXPECT_GE(checked, 13);
}

}  // namespace
}  // namespace feedpipe::testing
