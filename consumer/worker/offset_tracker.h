#pragma once
// Which offsets of the jobs topic are safe to commit: per partition, the lowest offset still in
// flight (or one past the highest taken when none is). A job is in flight from the moment it is
// read until its outcome is committed to SQLite (or, for a consumer without a database,
// acknowledged by Kafka on feed.refresh.outcomes). The recorder tracks outcome messages alike.
// Thread-safe.
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <vector>

namespace feedpipe::consumer {

struct PartitionOffset {
  int32_t partition;
  int64_t offset;  // the next offset to read: what Kafka stores as committed
};

class OffsetTracker {
 public:
  void assign(int32_t partition);
  // Stops tracking the partition; returns its committable offset if anything was taken.
  std::vector<PartitionOffset> revoke(const std::vector<int32_t>& partitions);
  void taken(int32_t partition, int64_t offset);
  void done(int32_t partition, int64_t offset);  // ignored for partitions no longer assigned
  // Committable offsets that moved since the last call.
  std::vector<PartitionOffset> to_commit();
  size_t in_flight() const;

 private:
  struct Partition {
    std::set<int64_t> in_flight;
    int64_t next = -1;       // one past the highest offset taken; -1 when none
    int64_t committed = -1;  // last offset handed out by to_commit()
    int64_t committable() const { return in_flight.empty() ? next : *in_flight.begin(); }
  };
  mutable std::mutex mu_;
  std::map<int32_t, Partition> partitions_;
};

}  // namespace feedpipe::consumer
