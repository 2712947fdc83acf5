#include "common/memory_trimmer.h"
#include "common/thread_name.h"

#include <malloc.h>

namespace feedpipe {

void set_malloc_arenas(long arenas) {
  if (arenas > 0) ::mallopt(M_ARENA_MAX, static_cast<int>(arenas));
}

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds interval) {
  if (interval.count() <= 0) return;
  thread_ = named_thread("fp-trim", [this, interval] {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, interval, [this] { return stop_; })) ::malloc_trim(0);
  });
}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace feedpipe
