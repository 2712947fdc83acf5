#pragma once
// The batches whose event logs grew and are waiting for the stream loop, longest-waiting first,
// each at most once. Not thread-safe: the loop's Wakeup guards it with its mutex.
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>

namespace feedpipe {

class GrowthQueue {
 public:
  // Queues the batch unless it is already waiting.
  void add(const std::string& batch_id) {
    if (waiting_.insert(batch_id).second) order_.push_back(batch_id);
  }
  // The batch that has waited longest; it may be queued again as soon as it is taken.
  std::optional<std::string> take_oldest() {
    if (order_.empty()) return std::nullopt;
    std::string batch_id = std::move(order_.front());
    order_.pop_front();
    waiting_.erase(batch_id);
    return batch_id;
  }
  bool empty() const { return order_.empty(); }

 private:
  std::deque<std::string> order_;
  std::unordered_set<std::string> waiting_;
};

}  // namespace feedpipe
