// Database's checkpoints: SQLite's automatic checkpoint, moved after the write turn, must still
// keep the WAL bounded, for one writer, for writers that overlap, and for commits outside write().
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <thread>
#include <vector>

#include "common/db.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

constexpr int kPageBytes = 4096;  // SQLite's default page size

class DatabaseCheckpoint : public testing::MigratedDbTest {
 protected:
  void SetUp() override { db_->exec("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB)"); }

  off_t wal_bytes() const {
    struct stat st {};
    return stat((path_ + "-wal").c_str(), &st) == 0 ? st.st_size : 0;
  }

  // `rows` commits of a row of about one page each.
  static void fill(Database& db, int rows) {
    for (int i = 0; i < rows; ++i)
      db.write([&] { db.exec("INSERT INTO filler (data) VALUES (randomblob(3000))"); });
  }
};

TEST_F(DatabaseCheckpoint, OneWriterKeepsTheWalNearTheThreshold) {
  const uint64_t before = Database::checkpoints();
  fill(*db_, 3 * Database::kCheckpointPages);  // about 3,000 pages written
  EXPECT_GE(Database::checkpoints() - before, 2u);
  // The WAL starts over once a checkpoint has copied it all: it never holds much more than the
  // threshold (the file keeps its largest size).
  EXPECT_LT(wal_bytes(), static_cast<off_t>(Database::kCheckpointPages + 200) * (kPageBytes + 24));
}

// Two writers whose commits and checkpoints overlap: a checkpoint that ran beside the other's
// write leaves frames behind, so the WAL cannot start over; past the in-turn limit it is
// checkpointed within the turn, and the WAL stays bounded. (Not at exactly that limit: while one
// writer's checkpoint runs outside the turn, the other's in-turn one finds it busy, and commits go
// on for as long as that checkpoint takes: CI saw 4,429 pages.)
TEST_F(DatabaseCheckpoint, OverlappingWritersKeepTheWalBounded) {
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w)
    writers.emplace_back([this] {
      Database db(path_);
      fill(db, 3 * Database::kCheckpointPages);
    });
  for (auto& t : writers) t.join();
  auto count = db_->prepare("SELECT count(*) FROM filler");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), 6 * Database::kCheckpointPages);
  count.reset();
  EXPECT_LT(wal_bytes(), static_cast<off_t>(2 * Database::kCheckpointInTurnPages) * (kPageBytes + 24));
}

// A reader that holds its snapshot keeps a PASSIVE checkpoint from finishing, so the WAL cannot
// start over: checkpoints then follow the WAL's growth, one per kCheckpointPages, not every commit
// (SQLite's own automatic checkpoint runs at each one). Once the reader is gone the WAL starts over.
TEST_F(DatabaseCheckpoint, AReaderHoldingTheWalGetsACheckpointPerThresholdOfGrowthNotPerCommit) {
  fill(*db_, 10);
  Database reader(path_);
  reader.exec("BEGIN");
  auto read = reader.prepare("SELECT count(*) FROM filler");
  ASSERT_TRUE(read.step());
  read.reset();  // the read transaction stays open until COMMIT

  const uint64_t before = Database::checkpoints();
  fill(*db_, Database::kCheckpointPages);  // a row's page and the pages above it: frames per commit
  const uint64_t while_held = Database::checkpoints() - before;
  const off_t frames = (wal_bytes() - 32) / (kPageBytes + 24);  // the WAL has not started over
  ASSERT_GT(frames, 2 * Database::kCheckpointPages);
  EXPECT_GE(while_held, static_cast<uint64_t>(frames / Database::kCheckpointPages - 1));
  EXPECT_LE(while_held, static_cast<uint64_t>(frames / Database::kCheckpointPages));

  reader.exec("COMMIT");
  fill(*db_, Database::kCheckpointPages);
  auto wal_frames = db_->prepare("PRAGMA wal_checkpoint(PASSIVE)");
  ASSERT_TRUE(wal_frames.step());
  EXPECT_LT(wal_frames.int64(1), Database::kCheckpointPages + 20) << "frames in the WAL: it did not start over";
}

// A writer with something more urgent than the checkpoint its commit made due (publishing what it
// committed) leaves it, and runs it after; if it never does, its next write() does.
TEST_F(DatabaseCheckpoint, ACheckpointLeftDueRunsWhenTheWriterSaysOrAtItsNextWrite) {
  // Each checkpoint copies the whole WAL, which then starts over: the commits alternate between
  // sizes, as the growth is counted from the size of the last checkpoint's (see on_wal_commit).
  auto one_big_commit = [this](int pages, Database::DueCheckpoint due) {
    db_->write([&] {
      for (int i = 0; i < pages; ++i)
        db_->exec("INSERT INTO filler (data) VALUES (randomblob(3000))");
    }, due);
  };
  uint64_t before = Database::checkpoints();
  one_big_commit(Database::kCheckpointPages + 100, Database::DueCheckpoint::leave);
  EXPECT_EQ(Database::checkpoints(), before);
  db_->run_due_checkpoint();
  EXPECT_EQ(Database::checkpoints(), before + 1);
  db_->run_due_checkpoint();  // nothing due any more
  EXPECT_EQ(Database::checkpoints(), before + 1);

  before = Database::checkpoints();
  one_big_commit(Database::kCheckpointPages * 5 / 2, Database::DueCheckpoint::leave);
  EXPECT_EQ(Database::checkpoints(), before);
  fill(*db_, 1);
  EXPECT_EQ(Database::checkpoints(), before + 1);

  before = Database::checkpoints();
  one_big_commit(Database::kCheckpointPages + 100, Database::DueCheckpoint::run);
  EXPECT_EQ(Database::checkpoints(), before + 1);
}

// A commit outside write() (a statement in autocommit mode) checkpoints at once, as SQLite would.
TEST_F(DatabaseCheckpoint, CommitsOutsideWriteCheckpointToo) {
  const uint64_t before = Database::checkpoints();
  for (int i = 0; i < 2 * Database::kCheckpointPages; ++i)
    db_->exec("INSERT INTO filler (data) VALUES (randomblob(3000))");
  EXPECT_GE(Database::checkpoints() - before, 1u);
  EXPECT_LT(wal_bytes(), static_cast<off_t>(Database::kCheckpointPages + 200) * (kPageBytes + 24));
}

}  // namespace
}  // namespace feedpipe
