// The one write path: recording job outcomes, seq assignment, idempotency, batch completion.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/job_outcomes.h"
#include "common/migrations.h"
#include "common/outcome_message.h"
#include "common/queries.h"
#include "producer/batch_intake.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

class JobOutcomesTest : public testing::MigratedDbTest {
 protected:
  producer::CreatedBatch create(const std::vector<std::string>& feeds, const std::string& key = "") {
    auto result = producer::create_batch(*db_, {feeds}, key, "body:" + std::to_string(feeds.size()));
    EXPECT_TRUE(std::holds_alternative<producer::CreatedBatch>(result));
    return std::get<producer::CreatedBatch>(result);
  }

  static JobOutcome ok(int64_t job_id, std::vector<ItemRecord> items) {
    JobOutcome o;
    o.job_id = job_id;
    o.status = JobStatus::ok;
    o.http_status = 200;
    o.fetch = FeedFetch{"http://a.test/final", "\"e1\"", "", "Title", "http://a.test/", std::move(items)};
    return o;
  }

  // A 429 or 503 whose Retry-After asks for `retry_after_s` seconds of peace.
  static JobOutcome refused(int64_t job_id, long http_status, int64_t retry_after_s) {
    JobOutcome o;
    o.job_id = job_id;
    o.status = JobStatus::failed;
    o.http_status = http_status;
    o.retry_after_s = retry_after_s;
    return o;
  }
};

// prepare(const char*) finds statements by address: text that changes at the same address
// must not get the statement of the old text.
TEST_F(JobOutcomesTest, StatementsFoundByAddressFollowTheirText) {
  char sql[32];
  std::strcpy(sql, "SELECT 1");
  auto one = db_->prepare(static_cast<const char*>(sql));
  ASSERT_TRUE(one.step());
  EXPECT_EQ(one.int64(0), 1);
  one.reset();
  std::strcpy(sql, "SELECT 22");
  auto two = db_->prepare(static_cast<const char*>(sql));
  ASSERT_TRUE(two.step());
  EXPECT_EQ(two.int64(0), 22);
  two.reset();
  auto literal = db_->prepare("SELECT 3");
  ASSERT_TRUE(literal.step());
  EXPECT_EQ(literal.int64(0), 3);
}

TEST_F(JobOutcomesTest, MigrationsAreRecordedAndAppliedOnce) {
  EXPECT_EQ(apply_migrations(*db_), 0);
  auto q = db_->prepare("SELECT count(*) FROM schema_migrations");
  ASSERT_TRUE(q.step());
  EXPECT_GE(q.int64(0), 1);
  auto mode = db_->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.step());
  EXPECT_EQ(mode.text(0), "wal");
}

// A database from before migration 0005 gets its feeds' item counts from the items it holds.
TEST_F(JobOutcomesTest, ItemCountMigrationCountsTheItemsAlreadyStored) {
  auto batch = create({"http://a.test/feed", "http://b.test/feed"});
  record_outcomes(*db_, {ok(batch.jobs[0].job_id, {{"g1", "", "", "", "", "", "", ""}, {"g2", "", "", "", "", "", "", ""}}),
                         ok(batch.jobs[1].job_id, {})});
  db_->exec("ALTER TABLE feeds DROP COLUMN item_count");
  db_->exec("DELETE FROM schema_migrations WHERE version LIKE '0005%'");
  EXPECT_EQ(apply_migrations(*db_), 1);
  auto q = db_->prepare("SELECT url, item_count FROM feeds ORDER BY url");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.text(0), "http://a.test/feed");
  EXPECT_EQ(q.int64(1), 2);
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(1), 0);
}

// How many temporary tables a statement builds each time it runs (EXPLAIN's OpenEphemeral).
// Prepared afresh (not from the connection's statement cache): an EXPLAIN runs no transaction, so
// a cached one would never notice a new schema.
int temporary_tables(Database& db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const std::string explain = "EXPLAIN " + sql;
  if (sqlite3_prepare_v2(db.handle(), explain.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(db.handle()) << ": " << sql;
    return -1;
  }
  int n = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    n += std::strcmp(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)), "OpenEphemeral") == 0;
  sqlite3_finalize(stmt);
  return n;
}

const std::vector<std::string> kStatusWrites = {
    "INSERT INTO jobs (batch_id, position, url) VALUES ('b', 1, 'u')",
    "UPDATE jobs SET status = 'ok' WHERE id = 1",
    "UPDATE batches SET status = 'completed' WHERE id = 'b'",
    "INSERT INTO events (batch_id, seq, type, ts, data) VALUES ('b', 1, 'job.completed', 1, '{}')",
    "UPDATE callbacks SET status = 'failed' WHERE batch_id = 'b'"};

// Migration 0007: a CHECK written as an IN list built a temporary table at every row written.
// A database from before it, with another connection open on it, changes for both connections,
// and the CHECKs still refuse what they refused.
TEST_F(JobOutcomesTest, StatusChecksBuildNoTemporaryTableAfterMigration0007) {
  for (const auto& sql : kStatusWrites) EXPECT_EQ(temporary_tables(*db_, sql), 0) << sql;
  // Back to the schema text of migrations 0001 and 0006, as a database of an older release has it.
  db_->write([&] {
    db_->exec("PRAGMA writable_schema=ON");
    db_->exec(
        "UPDATE sqlite_schema SET sql = replace(replace(replace(replace(sql, "
        "'status = ''queued'' OR status = ''running'' OR status = ''ok'' OR status = ''not_modified'' OR "
        "status = ''failed''', 'status IN (''queued'', ''running'', ''ok'', ''not_modified'', ''failed'')'), "
        "'status = ''queued'' OR status = ''running'' OR status = ''completed''', "
        "'status IN (''queued'', ''running'', ''completed'')'), "
        "'type = ''job.completed'' OR type = ''job.failed'' OR type = ''batch.completed''', "
        "'type IN (''job.completed'', ''job.failed'', ''batch.completed'')'), "
        "'status = ''pending'' OR status = ''delivered'' OR status = ''failed''', "
        "'status IN (''pending'', ''delivered'', ''failed'')') WHERE type = 'table'");
    auto v = db_->prepare("PRAGMA schema_version");
    ASSERT_TRUE(v.step());
    const int64_t version = v.int64(0);
    v.reset();
    db_->exec("PRAGMA schema_version=" + std::to_string(version + 1));
    db_->exec("PRAGMA writable_schema=RESET");
    db_->exec("DELETE FROM schema_migrations WHERE version LIKE '0007%'");
  });
  Database other(path_);
  for (const auto& sql : kStatusWrites) EXPECT_GE(temporary_tables(other, sql), 1) << "old schema: " << sql;

  EXPECT_EQ(apply_migrations(*db_), 1);
  // A connection reads the changed schema at its next transaction (an EXPLAIN starts none).
  other.exec("SELECT count(*) FROM jobs");
  for (Database* db : {db_, &other}) {
    for (const auto& sql : kStatusWrites)
      EXPECT_EQ(temporary_tables(*db, sql), 0) << (db == db_ ? "migrating connection: " : "other connection: ") << sql;
    auto schema = db->prepare("SELECT group_concat(sql) FROM sqlite_schema WHERE type = 'table'");
    ASSERT_TRUE(schema.step());
    EXPECT_EQ(schema.text(0).find(" IN ("), std::string::npos) << schema.text(0);
    schema.reset();
  }
  auto batch = create({"http://a.test/feed"});
  const std::string job = std::to_string(batch.jobs[0].job_id);
  for (const std::string& refused :
       {"UPDATE jobs SET status = 'done' WHERE id = " + job,
        "UPDATE batches SET status = 'finished' WHERE id = '" + batch.batch_id + "'",
        "INSERT INTO events (batch_id, seq, type, ts, data) VALUES ('" + batch.batch_id + "', 9, 'job.done', 1, '{}')"}) {
    try {
      other.exec(refused);
      ADD_FAILURE() << "accepted: " << refused;
    } catch (const DbError& e) {
      EXPECT_NE(std::string(e.what()).find("CHECK constraint failed"), std::string::npos) << e.what();
    }
  }
  other.exec("UPDATE jobs SET status = 'not_modified' WHERE id = " + job);
  auto check = db_->prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.step());
  EXPECT_EQ(check.text(0), "ok");
}

TEST_F(JobOutcomesTest, SeqIsGapFreeAndBatchCompletedIsLast) {
  auto batch = create({"http://a.test/1", "http://a.test/2", "http://a.test/3"});
  ASSERT_EQ(batch.jobs.size(), 3u);
  std::vector<EventMessage> all;
  for (int i : {2, 0, 1}) {
    JobOutcome o;
    o.job_id = batch.jobs[i].job_id;
    o.status = i == 0 ? JobStatus::failed : JobStatus::not_modified;
    o.error = i == 0 ? "HTTP 500" : "";
    if (i != 0) o.fetch = FeedFetch{};
    auto events = record_outcomes(*db_, {o});
    all.insert(all.end(), events.begin(), events.end());
  }
  ASSERT_EQ(all.size(), 4u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, static_cast<int64_t>(i + 1));
  EXPECT_EQ(all[3].type, "batch.completed");
  EXPECT_EQ(all[1].type, "job.failed");
  auto progress = batch_progress(*db_, batch.batch_id);
  EXPECT_EQ(progress->status, "completed");
  EXPECT_EQ(progress->done, 3);
  EXPECT_EQ(progress->failed, 1);
  EXPECT_EQ(progress->last_seq, 4);
}

// The list's last_seq is where a client showing the list resumes each batch's events.
TEST_F(JobOutcomesTest, TheBatchListCarriesEachBatchsNewestSeqWithItsCounts) {
  auto first = create({"http://a.test/1", "http://a.test/2"});
  auto second = create({"http://b.test/1"});
  JobOutcome o;
  o.job_id = first.jobs[0].job_id;
  o.status = JobStatus::not_modified;
  o.fetch = FeedFetch{};
  ASSERT_EQ(record_outcomes(*db_, {o}).size(), 1u);

  // Two batches made in the same millisecond have no order between them: find each by id.
  auto list = list_batches(*db_, 10, "")["batches"];
  ASSERT_EQ(list.size(), 2u);
  auto entry = [&](const std::string& id) {
    for (const auto& b : list)
      if (b["batch_id"] == id) return b;
    ADD_FAILURE() << "batch " << id << " is not in the list";
    return nlohmann::json::object();
  };
  EXPECT_EQ(entry(second.batch_id)["last_seq"], 0);
  EXPECT_EQ(entry(first.batch_id)["last_seq"], 1);
  EXPECT_EQ(entry(first.batch_id)["done"], 1);
  EXPECT_EQ(entry(first.batch_id)["total"], 2);
  auto events = events_after(*db_, first.batch_id, entry(first.batch_id)["last_seq"].get<int64_t>(), 10);
  EXPECT_TRUE(events.empty()) << "nothing after the listed seq yet";
}

TEST_F(JobOutcomesTest, EventDataIsValidJsonWithEveryContractFieldAndTheCountsAgree) {
  auto batch = create({"http://a.test/q?x=\"1\"", "http://a.test/2", "http://a.test/3"});
  JobOutcome failed;
  failed.job_id = batch.jobs[0].job_id;
  failed.status = JobStatus::failed;
  failed.http_status = 500;
  failed.duration_ms = 12;
  failed.error = "HTTP 500: \"oops\"\n\xff\x01";  // quotes, a newline, invalid UTF-8, a control byte
  JobOutcome unchanged;
  unchanged.job_id = batch.jobs[1].job_id;
  unchanged.status = JobStatus::not_modified;
  unchanged.http_status = 304;
  unchanged.fetch = FeedFetch{};
  auto fresh = ok(batch.jobs[2].job_id, {{"g1", "", "One", "", "", "", "", ""}, {"g2", "", "Two", "", "", "", "", ""}});
  OutcomeCounts counts;
  auto events = record_outcomes(*db_, {failed, unchanged, fresh}, &counts);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.not_modified, 1u);
  EXPECT_EQ(counts.ok, 1u);
  EXPECT_EQ(counts.items_new, 2u);
  EXPECT_EQ(counts.batches_completed, 1u);
  ASSERT_EQ(events.size(), 4u);
  std::vector<nlohmann::json> data;
  for (const auto& ev : events) {
    auto j = nlohmann::json::parse(ev.data, nullptr, false);
    ASSERT_TRUE(j.is_object()) << ev.data;
    EXPECT_EQ(j["seq"], ev.seq);
    EXPECT_EQ(j["batch_id"], batch.batch_id);
    EXPECT_TRUE(j["ts"].is_number_integer());
    data.push_back(j);
  }
  EXPECT_EQ(data[0]["url"], "http://a.test/q?x=\"1\"");
  EXPECT_EQ(data[0]["status"], "failed");
  EXPECT_EQ(data[0]["http_status"], 500);
  EXPECT_TRUE(data[0]["items_new"].is_null());
  EXPECT_TRUE(data[0]["items_total"].is_null());
  EXPECT_EQ(data[0]["duration_ms"], 12);
  EXPECT_EQ(data[0]["error"], "HTTP 500: \"oops\"\n\xef\xbf\xbd\x01");
  EXPECT_EQ(data[0]["position"], 0);
  EXPECT_TRUE(data[0]["feed_id"].is_number_integer());
  EXPECT_EQ(data[0]["progress"], (nlohmann::json{{"total", 3}, {"done", 1}, {"failed", 1}}));
  EXPECT_EQ(data[1]["status"], "not_modified");
  EXPECT_EQ(data[1]["items_new"], 0);
  EXPECT_EQ(data[1]["items_total"], 0);
  EXPECT_TRUE(data[1]["error"].is_null());
  EXPECT_EQ(data[2]["status"], "ok");
  EXPECT_EQ(data[2]["items_new"], 2);
  EXPECT_EQ(data[2]["items_total"], 2);
  EXPECT_EQ(events[3].type, "batch.completed");
  EXPECT_EQ(data[3]["status"], "completed");
  EXPECT_EQ(data[3]["progress"], (nlohmann::json{{"total", 3}, {"done", 3}, {"failed", 1}}));
  // The stored rows hold the same text.
  auto q = db_->prepare("SELECT data FROM events WHERE batch_id = ? ORDER BY seq");
  q.bind(1, batch.batch_id);
  for (const auto& ev : events) {
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.text(0), ev.data);
  }
}

TEST_F(JobOutcomesTest, AnOutcomeReadFromItsMessageRecordsAsTheLocalOneAndAnUnknownJobChangesNothing) {
  auto batch = create({"http://a.test/1", "http://a.test/2"});
  auto outcome = ok(batch.jobs[0].job_id, {{"g1", "http://a.test/1", "One", "", "", "", "", ""},
                                           {"g2", "http://a.test/2", "Two", "", "", "", "", ""}});
  OutcomeMessage m = read_outcome_message(serialize_outcome(batch.batch_id, outcome));
  OutcomeCounts counts;
  EXPECT_EQ(record_outcomes(*db_, {m.outcome}, &counts).size(), 1u);
  EXPECT_EQ(counts.items_new, 2u);
  // Redelivered, and one of a job this database does not know.
  EXPECT_TRUE(record_outcomes(*db_, {m.outcome}).empty());
  JobOutcome unknown = m.outcome;
  unknown.job_id = 987654;
  EXPECT_TRUE(record_outcomes(*db_, {unknown}, &counts).empty());
  EXPECT_EQ(counts.ok + counts.failed + counts.not_modified, 0u);
  auto snap = batch_snapshot(*db_, batch.batch_id);
  EXPECT_EQ((*snap)["done"], 1);
  EXPECT_EQ((*snap)["jobs"][0]["items_new"], 2);
  auto q = db_->prepare("SELECT count(*) FROM items");
  q.step();
  EXPECT_EQ(q.int64(0), 2);
}

TEST_F(JobOutcomesTest, JobsOfAKnownFeedCarryItsValidatorsAndRetryAfter) {
  auto first = create({"http://a.test/1", "http://a.test/2"});
  EXPECT_TRUE(first.jobs[0].etag.empty());
  auto outcome = ok(first.jobs[0].job_id, {});
  outcome.fetch->last_modified = "Mon, 01 Jan 2024 12:00:00 GMT";
  record_outcomes(*db_, {outcome, refused(first.jobs[1].job_id, 429, 3600)});
  auto second = create({"http://a.test/1", "http://a.test/2"});
  EXPECT_EQ(second.jobs[0].etag, "\"e1\"");
  EXPECT_EQ(second.jobs[0].last_modified, "Mon, 01 Jan 2024 12:00:00 GMT");
  EXPECT_TRUE(second.jobs[0].not_before.empty());
  EXPECT_FALSE(second.jobs[1].not_before.empty());
  EXPECT_GT(second.jobs[1].not_before, now_rfc3339());
}

// What a consumer reads before it fetches: one statement for many jobs, answered in the order
// asked (repeats included), with nothing for an unknown job.
TEST_F(JobOutcomesTest, FetchStatesOfManyJobsComeInTheOrderAsked) {
  auto first = create({"http://a.test/1", "http://a.test/2", "http://a.test/3"});
  record_outcomes(*db_, {ok(first.jobs[0].job_id, {}), refused(first.jobs[1].job_id, 503, 3600)});
  auto second = create({"http://a.test/1", "http://a.test/2", "http://a.test/3"});
  const int64_t unknown = second.jobs[2].job_id + 1000;

  auto states = job_fetch_states(*db_, {second.jobs[2].job_id, unknown, first.jobs[0].job_id,
                                        second.jobs[0].job_id, second.jobs[1].job_id, second.jobs[0].job_id});
  ASSERT_EQ(states.size(), 6u);
  EXPECT_EQ(states[0].status, JobStatus::queued);
  EXPECT_TRUE(states[0].etag.empty());
  EXPECT_TRUE(states[0].next_fetch_at.empty());
  EXPECT_FALSE(states[1].status);
  EXPECT_EQ(states[2].status, JobStatus::ok);
  EXPECT_EQ(states[3].status, JobStatus::queued);
  EXPECT_EQ(states[3].etag, "\"e1\"");
  EXPECT_TRUE(states[3].next_fetch_at.empty());
  EXPECT_EQ(states[4].status, JobStatus::queued);
  EXPECT_GT(states[4].next_fetch_at, now_rfc3339());
  EXPECT_EQ(states[5].etag, states[3].etag);
  EXPECT_TRUE(job_fetch_states(*db_, {}).empty());
}

TEST_F(JobOutcomesTest, RedeliveredOutcomeChangesNothing) {
  auto batch = create({"http://a.test/1", "http://a.test/2"});
  auto outcome = ok(batch.jobs[0].job_id, {{"g1", "http://a.test/1", "One", "", "", "", "", ""}});
  EXPECT_EQ(record_outcomes(*db_, {outcome}).size(), 1u);
  EXPECT_TRUE(record_outcomes(*db_, {outcome}).empty());
  JobOutcome failed;
  failed.job_id = batch.jobs[0].job_id;
  failed.status = JobStatus::failed;
  EXPECT_TRUE(record_outcomes(*db_, {failed}).empty());
  EXPECT_EQ(job_status(*db_, batch.jobs[0].job_id), JobStatus::ok);
  auto snap = batch_snapshot(*db_, batch.batch_id);
  EXPECT_EQ((*snap)["done"], 1);
  EXPECT_EQ((*snap)["jobs"][0]["items_new"], 1);
}

TEST_F(JobOutcomesTest, ItemsAreUpsertedPerFeedAndCountedOnce) {
  auto first = create({"http://a.test/feed"});
  std::vector<ItemRecord> items{{"g1", "", "One", "", "", "", "", ""}, {"", "http://a.test/2", "Two", "", "", "", "", ""}};
  auto events = record_outcomes(*db_, {ok(first.jobs[0].job_id, items)});
  auto data = nlohmann::json::parse(events[0].data);
  EXPECT_EQ(data["items_new"], 2);
  EXPECT_EQ(data["items_total"], 2);
  items[0].title = "One, edited";
  items.insert(items.begin(), {"g3", "", "Three", "", "", "", "", ""});  // new items come first
  auto second = create({"http://a.test/feed"});
  events = record_outcomes(*db_, {ok(second.jobs[0].job_id, items)});
  data = nlohmann::json::parse(events[0].data);
  EXPECT_EQ(data["items_new"], 1);
  EXPECT_EQ(data["items_total"], 3);
  auto listed = feed_items(*db_, second.jobs[0].feed_id, 10, 0);
  ASSERT_EQ((*listed)["items"].size(), 3u);
  EXPECT_EQ((*listed)["items"][0]["guid"], "g3");  // newest first
  EXPECT_EQ((*listed)["items"][1]["title"], "One, edited");
  EXPECT_EQ((*listed)["items"][2]["title"], "Two");

  // Unchanged (304): the event reports the stored count, as does the feed's state.
  auto third = create({"http://a.test/feed"});
  JobOutcome unchanged;
  unchanged.job_id = third.jobs[0].job_id;
  unchanged.status = JobStatus::not_modified;
  unchanged.http_status = 304;
  unchanged.fetch = FeedFetch{"http://a.test/feed", "", "", "", "", {}};
  events = record_outcomes(*db_, {unchanged});
  data = nlohmann::json::parse(events[0].data);
  EXPECT_EQ(data["items_new"], 0);
  EXPECT_EQ(data["items_total"], 3);
  EXPECT_EQ((*feed_state(*db_, third.jobs[0].feed_id))["items_total"], 3);
}

TEST_F(JobOutcomesTest, SameFeedTwiceInABatchSharesTheOutcome) {
  auto batch = create({"http://a.test/feed", "HTTP://A.TEST:80/feed", "http://a.test/other"});
  ASSERT_EQ(batch.jobs[0].feed_id, batch.jobs[1].feed_id);
  auto events = record_outcomes(*db_, {ok(batch.jobs[0].job_id, {})});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(events[1].data)["position"], 1);
  EXPECT_TRUE(record_outcomes(*db_, {ok(batch.jobs[1].job_id, {})}).empty());
}

// With the jobs topic's partitioner, a batch's jobs (and the feeds it creates) are numbered
// partition by partition, so that the outcomes of one partition's run are neighbouring rows;
// positions, URLs and shared feeds stay as submitted, and unfetchable URLs come last.
TEST_F(JobOutcomesTest, JobsAndNewFeedsAreNumberedPartitionByPartitionKeepingTheirPositions) {
  const int64_t known = create({"http://a.test/p0-c"}).jobs[0].feed_id;
  const std::vector<std::string> feeds{"http://a.test/p1-a", "mailto:x@y.test", "http://a.test/p0-b",
                                       "HTTP://A.TEST:80/p1-a", "http://a.test/p0-c", "http://a.test/p1-d"};
  // The digit after "/p": partition 0 or 1.
  auto partition_of = [](const std::string& url) { return url[url.find("/p") + 2] - '0'; };
  auto batch = std::get<producer::CreatedBatch>(producer::create_batch(*db_, {feeds}, "", "body", partition_of));

  std::vector<int64_t> positions;
  auto q = db_->prepare("SELECT position, url FROM jobs WHERE batch_id = ? ORDER BY id");
  q.bind(1, batch.batch_id);
  while (q.step()) {
    positions.push_back(q.int64(0));
    EXPECT_EQ(q.text(1), feeds[q.int64(0)]);  // the URL as submitted, at its position
  }
  q.reset();
  EXPECT_EQ(positions, (std::vector<int64_t>{2, 4, 0, 3, 5, 1}));

  ASSERT_EQ(batch.jobs.size(), 5u);  // to publish, in the order of their ids
  for (size_t i = 1; i < batch.jobs.size(); ++i) EXPECT_LT(batch.jobs[i - 1].job_id, batch.jobs[i].job_id);
  std::map<int64_t, JobMessage> at;
  for (const JobMessage& job : batch.jobs) at[job.position] = job;
  EXPECT_EQ(at[0].feed_id, at[3].feed_id);  // two spellings of one new feed
  EXPECT_EQ(at[3].url, "http://a.test/p1-a");
  EXPECT_EQ(at[4].feed_id, known);
  // New feeds in the jobs' order: partition 0's before partition 1's.
  EXPECT_LT(known, at[2].feed_id);
  EXPECT_LT(at[2].feed_id, at[0].feed_id);
  EXPECT_LT(at[0].feed_id, at[5].feed_id);

  ASSERT_EQ(batch.events.size(), 1u);  // the unfetchable URL's failure
  EXPECT_EQ(nlohmann::json::parse(batch.events[0].data)["position"], 1);
  auto snap = batch_snapshot(*db_, batch.batch_id);
  for (size_t pos = 0; pos < feeds.size(); ++pos) EXPECT_EQ((*snap)["jobs"][pos]["url"], feeds[pos]) << pos;
}

// The intake writes without foreign-key checks (its rows refer to what it has just written or
// read); the connection checks them again afterwards.
TEST_F(JobOutcomesTest, TheIntakeLeavesForeignKeyChecksOnAsItFoundThem) {
  auto batch = create({"http://a.test/1"});
  auto orphan = [&] {
    db_->prepare("INSERT INTO jobs (batch_id, position, url) VALUES ('no-such-batch', 0, 'http://a.test/')").run();
  };
  EXPECT_THROW(orphan(), DbError);
  db_->exec("PRAGMA foreign_keys=OFF");
  create({"http://a.test/2"});
  EXPECT_NO_THROW(orphan());  // left off, as it was
  db_->exec("PRAGMA foreign_keys=ON");
}

TEST_F(JobOutcomesTest, InvalidUrlsFailAtSubmitAndCanCompleteTheBatch) {
  auto batch = create({"mailto:x@y.test", "   "});
  EXPECT_TRUE(batch.jobs.empty());
  ASSERT_EQ(batch.events.size(), 3u);
  EXPECT_EQ(batch.events[2].type, "batch.completed");
  auto snap = batch_snapshot(*db_, batch.batch_id);
  EXPECT_EQ((*snap)["status"], "completed");
  EXPECT_NE((*snap)["jobs"][0]["error"].get<std::string>().find("scheme"), std::string::npos);
}

TEST_F(JobOutcomesTest, IdempotencyKeyReturnsTheFirstBatch) {
  auto first = producer::create_batch(*db_, {{"http://a.test/1"}}, "key-1", "same body");
  auto again = producer::create_batch(*db_, {{"http://a.test/1"}}, "key-1", "same body");
  auto other = producer::create_batch(*db_, {{"http://a.test/2"}}, "key-1", "other body");
  ASSERT_TRUE(std::holds_alternative<producer::CreatedBatch>(again));
  EXPECT_EQ(std::get<producer::CreatedBatch>(again).batch_id, std::get<producer::CreatedBatch>(first).batch_id);
  EXPECT_TRUE(std::get<producer::CreatedBatch>(again).replayed);
  ASSERT_TRUE(std::holds_alternative<producer::Refusal>(other));
  EXPECT_EQ(std::get<producer::Refusal>(other).status, 422);
}

TEST_F(JobOutcomesTest, MarkRunningMovesQueuedJobsAndTheBatch) {
  auto batch = create({"http://a.test/1", "http://a.test/2"});
  mark_jobs_running(*db_, {batch.jobs[0].job_id});
  EXPECT_EQ(job_status(*db_, batch.jobs[0].job_id), JobStatus::running);
  EXPECT_EQ(job_status(*db_, batch.jobs[1].job_id), JobStatus::queued);
  EXPECT_EQ(batch_progress(*db_, batch.batch_id)->status, "running");
  record_outcomes(*db_, {ok(batch.jobs[0].job_id, {})});
  mark_jobs_running(*db_, {batch.jobs[0].job_id});  // final stays final
  EXPECT_EQ(job_status(*db_, batch.jobs[0].job_id), JobStatus::ok);
}

// Outcome messages (consumers without a database → recorder).
TEST(OutcomeMessages, ReadBackAsWrittenItemsIncluded) {
  JobOutcome o;
  o.job_id = 77;
  o.status = JobStatus::ok;
  o.http_status = 200;
  o.duration_ms = 123;
  o.fetch = FeedFetch{"http://a.test/final", "\"e\\1\"", "Mon, 01 Jan 2024 12:00:00 GMT", "T\u00edtulo \"q\"",
                      "http://a.test/", {}};
  o.fetch->items.push_back({"g1", "http://a.test/1", "One\n<b>", "Ann", "2024-01-01T10:00:00Z", "", "S & s",
                            std::string("content \x01 with control")});
  o.fetch->items.push_back({"", "http://a.test/2", "Two", "", "", "", "", ""});
  const std::string text = serialize_outcome("batch\"1", o);
  EXPECT_EQ(text.substr(0, 4), std::string("FPO\x02"));
  OutcomeMessage m = read_outcome_message(text);
  EXPECT_EQ(m.batch_id, "batch\"1");
  EXPECT_EQ(m.outcome.job_id, 77);
  EXPECT_EQ(m.outcome.status, JobStatus::ok);
  EXPECT_EQ(m.outcome.http_status, 200);
  EXPECT_EQ(m.outcome.duration_ms, 123);
  EXPECT_EQ(m.outcome.error, "");
  EXPECT_FALSE(m.outcome.retry_after_s);
  ASSERT_TRUE(m.outcome.fetch);
  EXPECT_EQ(m.outcome.fetch->final_url, o.fetch->final_url);
  EXPECT_EQ(m.outcome.fetch->etag, o.fetch->etag);
  EXPECT_EQ(m.outcome.fetch->last_modified, o.fetch->last_modified);
  EXPECT_EQ(m.outcome.fetch->title, o.fetch->title);
  EXPECT_EQ(m.outcome.fetch->link, o.fetch->link);
  ASSERT_EQ(m.outcome.fetch->items.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const ItemRecord &a = o.fetch->items[i], &b = m.outcome.fetch->items[i];
    EXPECT_EQ(std::tie(a.guid, a.link, a.title, a.author, a.published, a.updated, a.summary, a.content),
              std::tie(b.guid, b.link, b.title, b.author, b.published, b.updated, b.summary, b.content));
  }

  JobOutcome failed;
  failed.job_id = 78;
  failed.status = JobStatus::failed;
  failed.http_status = 503;
  failed.error = "HTTP 503";
  failed.retry_after_s = 120;
  OutcomeMessage f = read_outcome_message(serialize_outcome("b", failed));
  EXPECT_EQ(f.outcome.status, JobStatus::failed);
  EXPECT_EQ(f.outcome.error, "HTTP 503");
  EXPECT_EQ(f.outcome.retry_after_s, 120);
  EXPECT_FALSE(f.outcome.fetch);

  // Bytes travel as they are, invalid UTF-8 and NULs included: the recorder stores what a local
  // consumer would have stored.
  static constexpr char kRaw[] = "bad \xff\xfe utf-8 \0 nul";
  o.fetch->items[0].title = std::string(kRaw, sizeof kRaw - 1);
  o.job_id = (int64_t{1} << 62) + 5;
  o.duration_ms = -1;
  OutcomeMessage raw = read_outcome_message(serialize_outcome("b", o));
  EXPECT_EQ(raw.outcome.fetch->items[0].title, o.fetch->items[0].title);
  EXPECT_EQ(raw.outcome.job_id, o.job_id);
  EXPECT_EQ(raw.outcome.duration_ms, -1);
}

TEST(OutcomeMessages, GarbageAndOtherVersionsAreRefusedWithAReason) {
  auto reason = [](std::string_view payload) {
    try {
      read_outcome_message(payload);
    } catch (const OutcomeMessageError& e) {
      return e.reason();
    }
    return std::string("accepted");
  };
  EXPECT_EQ(reason("not an outcome"), "malformed");
  EXPECT_EQ(reason(""), "malformed");
  EXPECT_EQ(reason("FPO"), "malformed");
  EXPECT_EQ(reason(R"({"v":1,"job_id":1,"batch_id":"b","status":"failed"})"), "malformed");  // format 1
  EXPECT_EQ(reason(std::string("FPO\x63", 4)), "unknown_version");
  EXPECT_EQ(reason(std::string("FPO\x01{}", 6)), "unknown_version");

  JobOutcome failed;
  failed.job_id = 1;
  failed.status = JobStatus::failed;
  failed.error = "x";
  const std::string good = serialize_outcome("b", failed);
  EXPECT_EQ(reason(good), "accepted");
  for (size_t cut = 4; cut < good.size(); ++cut) EXPECT_EQ(reason(good.substr(0, cut)), "bad_fields") << cut;
  EXPECT_EQ(reason(good + "x"), "bad_fields");
  std::string running = good;
  running.replace(running.find("failed"), 6, "queued");
  EXPECT_EQ(reason(running), "bad_fields");
  JobOutcome ok_without_fetch = failed;
  ok_without_fetch.status = JobStatus::ok;
  EXPECT_EQ(reason(serialize_outcome("b", ok_without_fetch)), "bad_fields");

  // A count of items, or a length, past the end of the message is refused before anything is
  // allocated for it.
  JobOutcome fetched = failed;
  fetched.status = JobStatus::ok;
  fetched.fetch = FeedFetch{};
  std::string huge_count = serialize_outcome("b", fetched);
  ASSERT_EQ(huge_count.back(), '\0');  // zero items, the last field
  huge_count.back() = '\xff';
  huge_count += std::string("\xff\xff\xff\x0f", 4);
  EXPECT_EQ(reason(huge_count), "bad_fields");
  std::string long_string = good;
  long_string[long_string.find('b') - 1] = '\x7f';  // batch id "b" claims 127 bytes
  EXPECT_EQ(reason(long_string), "bad_fields");
  EXPECT_EQ(reason(std::string("FPO\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 15)), "bad_fields");
}

TEST(BatchRequest, ValidatesShapeAndLimits) {
  using producer::parse_batch_request;
  using producer::Refusal;
  auto status = [](const std::string& body) {
    auto r = parse_batch_request(body, 3);
    return std::holds_alternative<Refusal>(r) ? std::get<Refusal>(r).status : 202;
  };
  EXPECT_EQ(status("{"), 400);
  EXPECT_EQ(status("null"), 400);
  EXPECT_EQ(status(R"({"feeds":{}})"), 400);
  EXPECT_EQ(status(R"({"feeds":["a",2]})"), 400);
  EXPECT_EQ(status(R"({"feeds":[]})"), 422);
  EXPECT_EQ(status(R"({"feeds":["a","b","c","d"]})"), 413);
  EXPECT_EQ(status(R"({"feeds":["not a url","http://x.test/"]})"), 202);
}

}  // namespace
}  // namespace feedpipe
