#include "consumer/worker/offset_tracker.h"

namespace feedpipe::consumer {

void OffsetTracker::assign(int32_t partition) {
  std::lock_guard lock(mu_);
  partitions_.try_emplace(partition);
}

std::vector<PartitionOffset> OffsetTracker::revoke(const std::vector<int32_t>& partitions) {
  std::lock_guard lock(mu_);
  std::vector<PartitionOffset> out;
  for (int32_t p : partitions) {
    auto it = partitions_.find(p);
    if (it == partitions_.end()) continue;
    int64_t c = it->second.committable();
    if (c >= 0 && c != it->second.committed) out.push_back({p, c});
    partitions_.erase(it);
  }
  return out;
}

void OffsetTracker::taken(int32_t partition, int64_t offset) {
  std::lock_guard lock(mu_);
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) it = partitions_.try_emplace(partition).first;
  it->second.in_flight.insert(offset);
  if (offset + 1 > it->second.next) it->second.next = offset + 1;
}

void OffsetTracker::done(int32_t partition, int64_t offset) {
  std::lock_guard lock(mu_);
  auto it = partitions_.find(partition);
  if (it != partitions_.end()) it->second.in_flight.erase(offset);
}

std::vector<PartitionOffset> OffsetTracker::to_commit() {
  std::lock_guard lock(mu_);
  std::vector<PartitionOffset> out;
  for (auto& [p, part] : partitions_) {
    int64_t c = part.committable();
    if (c >= 0 && c != part.committed) {
      out.push_back({p, c});
      part.committed = c;
    }
  }
  return out;
}

size_t OffsetTracker::in_flight() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [p, part] : partitions_) n += part.in_flight.size();
  return n;
}

}  // namespace feedpipe::consumer
