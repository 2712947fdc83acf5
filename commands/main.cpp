// feedpipe: one binary, one command per role. See DESIGN.md's command table.
#include <cstdio>
#include <cstring>
#include <exception>

#include "commands/commands.h"

// jemalloc's options, read when it starts, in a binary that links it (CMake's FEEDPIPE_MALLOC, see
// common/memory_trimmer.h); MALLOC_CONF in the environment overrides them. Two arenas, as
// --malloc-arenas gives glibc's malloc: with jemalloc's default of four per core, resident memory
// after 20 batches of new feeds grew up to 26% over the first batch's (bench/throughput/memory.sh).
// Freed pages go back to the OS once unused for 1 s (jemalloc's default: 10 s), by jemalloc
// itself and by --memory-trim-ms: with 10 s, that growth reached 34% in one run of three.
extern "C" {
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000";
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(feedpipe::commands::usage().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const feedpipe::commands::Command* command = feedpipe::commands::find(argv[1]);
  if (!command) {
    std::fprintf(stderr, "feedpipe: unknown command '%s'\n\n%s", argv[1],
                 feedpipe::commands::usage().c_str());
    return 2;
  }
  return feedpipe::commands::run(*command, argc - 2, argv + 2);
}
