#pragma once
// Hands freed heap memory back to the OS at a fixed interval, on a thread of its own. glibc keeps
// what threads free in per-thread arenas; a service that works in bursts (a batch of thousands of
// fetches, then quiet) would otherwise keep its peak resident for good.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace feedpipe {

class MemoryTrimmer {
 public:
  explicit MemoryTrimmer(std::chrono::milliseconds interval);  // 0: never trims
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace feedpipe
