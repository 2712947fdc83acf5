// A stream of many batches apart from sockets (broadcaster/multi_batch_stream.h): the batch list's
// refusals, the stream's event ids, and how frames leave the batches' shared logs.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "broadcaster/batch_log.h"
#include "broadcaster/multi_batch_stream.h"

namespace {

using feedpipe::BatchLog;
using feedpipe::EventMessage;
using feedpipe::MultiBatchStream;
using feedpipe::parse_batch_list;
using feedpipe::parse_stream_id;

EventMessage event(const std::string& batch, int64_t seq, const std::string& type = "job.completed") {
  EventMessage e;
  e.batch_id = batch;
  e.seq = seq;
  e.type = type;
  e.data = R"({"batch_id":")" + batch + R"(","seq":)" + std::to_string(seq) + "}";
  return e;
}

// The frames of `text`: their id and their data's batch and seq.
struct Frame {
  std::string id, batch;
  int64_t seq = 0;
};
std::vector<Frame> frames(const std::string& text) {
  std::vector<Frame> out;
  size_t pos = 0;
  for (size_t end; (end = text.find("\n\n", pos)) != std::string::npos; pos = end + 2) {
    std::string f = text.substr(pos, end - pos);
    Frame fr;
    fr.id = f.substr(4, f.find('\n') - 4);
    size_t b = f.find(R"("batch_id":")") + 12;
    fr.batch = f.substr(b, f.find('"', b) - b);
    fr.seq = std::stoll(f.substr(f.find(R"("seq":)") + 6));
    out.push_back(fr);
  }
  return out;
}

TEST(MultiBatchStreamRequest, RefusesNoBatchTooManyInvalidAndDuplicateBatches) {
  auto ok = parse_batch_list("batch=a&token=x&batch=b%2Dc&batch=d", 3, "--max-stream-batches");
  ASSERT_FALSE(ok.refusal);
  EXPECT_EQ(ok.batch_ids, (std::vector<std::string>{"a", "b-c", "d"}));

  auto none = parse_batch_list("token=x", 3, "--max-stream-batches");
  ASSERT_TRUE(none.refusal);
  EXPECT_EQ(none.refusal->status, 400);
  EXPECT_EQ(none.refusal->code, "batch_required");

  auto many = parse_batch_list("batch=a&batch=b&batch=c&batch=d", 3, "--max-stream-batches");
  ASSERT_TRUE(many.refusal);
  EXPECT_EQ(many.refusal->code, "too_many_batches");
  EXPECT_NE(many.refusal->message.find("at most 3"), std::string::npos);
  EXPECT_NE(many.refusal->message.find("--max-stream-batches"), std::string::npos);

  for (const char* bad : {"batch=", "batch=a%2Fb", "batch=a%0Ab", "batch"}) {
    auto r = parse_batch_list(bad, 3, "x");
    ASSERT_TRUE(r.refusal) << bad;
    EXPECT_EQ(r.refusal->code, "invalid_batch_id") << bad;
  }
  auto longer = parse_batch_list("batch=" + std::string(129, 'a'), 3, "x");
  ASSERT_TRUE(longer.refusal);
  EXPECT_EQ(longer.refusal->code, "invalid_batch_id");

  auto twice = parse_batch_list("batch=a&batch=b&batch=a", 3, "x");
  ASSERT_TRUE(twice.refusal);
  EXPECT_EQ(twice.refusal->code, "duplicate_batch");
  EXPECT_NE(twice.refusal->message.find("batch a"), std::string::npos);
}

TEST(MultiBatchStreamId, RoundTripsOneSeqPerBatchAndRefusesOtherIds) {
  std::string id;
  feedpipe::append_stream_id(id, {3, 0, 17});
  EXPECT_EQ(id, "3.0.17");
  EXPECT_EQ(parse_stream_id(id, 3), (std::vector<int64_t>{3, 0, 17}));
  EXPECT_EQ(parse_stream_id("", 2), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(parse_stream_id("5", 1), (std::vector<int64_t>{5})) << "one batch: its seq, as on a batch's stream";
  for (const char* bad : {"3.0", "3.0.17.1", "3..1", "3.0.", ".3.0", "3.-1.2", "a.b.c", "3.0.1x", "5"})
    EXPECT_FALSE(parse_stream_id(bad, 3).has_value()) << bad;
}

TEST(MultiBatchStreamFill, TakesTurnsKeepsEachBatchInSeqOrderAndLabelsEveryFrameWithAllCursors) {
  BatchLog a, b;
  for (int64_t s = 1; s <= 3; ++s) ASSERT_TRUE(a.append(event("a", s)));
  ASSERT_TRUE(a.append(event("a", 4, "batch.completed")));
  ASSERT_FALSE(a.append(event("a", 6))) << "a log holds no gap";
  ASSERT_TRUE(b.append(event("b", 1)));
  MultiBatchStream stream({1, 0});  // resumes a after its seq 1
  stream.members()[0].log = &a;
  stream.members()[1].log = &b;
  stream.start();
  std::string out;
  EXPECT_EQ(stream.fill(out, 1 << 20), 4u);
  auto got = frames(out);
  ASSERT_EQ(got.size(), 4u);
  // Turns: a2, b1, a3, a4; each id is every batch's last seq so far.
  EXPECT_EQ(got[0].batch, "a");
  EXPECT_EQ(got[0].seq, 2);
  EXPECT_EQ(got[0].id, "2.0");
  EXPECT_EQ(got[1].batch, "b");
  EXPECT_EQ(got[1].id, "2.1");
  EXPECT_EQ(got[2].id, "3.1");
  EXPECT_EQ(got[3].id, "4.1");
  EXPECT_NE(out.find("event: batch.completed\n"), std::string::npos);
  EXPECT_FALSE(stream.finished()) << "b has not completed";
  EXPECT_EQ(stream.fill(out, 1 << 20), 0u);
  ASSERT_TRUE(b.append(event("b", 2, "batch.completed")));
  out.clear();
  EXPECT_EQ(stream.fill(out, 1 << 20), 1u);
  EXPECT_EQ(frames(out)[0].id, "4.2");
  EXPECT_TRUE(stream.finished());
}

TEST(MultiBatchStreamFill, HoldsAtMostTheLimitAndOneFrameAndLeavesTheRestInTheLogs) {
  BatchLog logs[3];
  const std::string big(2000, 'x');
  for (int i = 0; i < 3; ++i)
    for (int64_t s = 1; s <= 50; ++s) {
      EventMessage e = event("b" + std::to_string(i), s);
      e.data.insert(e.data.size() - 1, R"(,"pad":")" + big + "\"");
      ASSERT_TRUE(logs[i].append(e));
    }
  MultiBatchStream stream({0, 0, 0});
  for (int i = 0; i < 3; ++i) stream.members()[static_cast<size_t>(i)].log = &logs[i];
  stream.start();
  std::map<std::string, std::vector<int64_t>> seen;
  size_t total = 0;
  while (true) {
    std::string out;
    size_t n = stream.fill(out, 8192);
    if (n == 0) break;
    EXPECT_LE(out.size(), 8192u + 2100u) << "at most the limit and one frame";
    for (const Frame& f : frames(out)) seen[f.batch].push_back(f.seq);
    total += n;
  }
  EXPECT_EQ(total, 150u);
  for (auto& [batch, seqs] : seen) {
    ASSERT_EQ(seqs.size(), 50u) << batch;
    for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i + 1)) << batch;
  }
}

TEST(MultiBatchStreamFill, CountsOnlyLiveFramesAsLag) {
  BatchLog a;
  ASSERT_TRUE(a.append(event("a", 1)));
  MultiBatchStream stream({0});
  stream.members()[0].log = &a;
  stream.start();
  EXPECT_EQ(stream.lag(), 0u) << "the history at start is catch-up, not lag";
  const size_t before = a.log.size();
  ASSERT_TRUE(a.append(event("a", 2)));
  EXPECT_EQ(stream.lag(), a.log.size() - before);
  std::string out;
  stream.fill(out, 1 << 20);
  EXPECT_EQ(stream.lag(), 0u);
}

}  // namespace
