#include "common/memory_trimmer.h"
#include "common/thread_name.h"

#include <malloc.h>

// jemalloc's control interface: defined when the binary links jemalloc (CMake's FEEDPIPE_MALLOC,
// the default), null with glibc's malloc (the sanitizer builds, and the test binaries).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace feedpipe {

void set_malloc_arenas(long arenas) {
  if (arenas > 0 && !mallctl) ::mallopt(M_ARENA_MAX, static_cast<int>(arenas));
}

namespace {

// The heap's free pages back to the OS: glibc's malloc_trim, or jemalloc's decay of every arena.
void release_free_memory() {
  if (mallctl) {
    // MALLCTL_ARENAS_ALL (4096): every arena hands back the pages that have stayed unused longer
    // than its dirty_decay_ms (1 s, commands/main.cpp). A purge of every unused page (until
    // session 14) also gave back pages freed a moment before, which the next transfers took
    // again. Resident memory after 20 batches is the same with either (BENCHMARKS.md, session 14).
    mallctl("arena.4096.decay", nullptr, nullptr, nullptr, 0);
  } else {
    ::malloc_trim(0);
  }
}

}  // namespace

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds interval) {
  if (interval.count() <= 0) return;
  thread_ = named_thread("fp-trim", [this, interval] {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, interval, [this] { return stop_; })) release_free_memory();
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
