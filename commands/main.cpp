// feedpipe: one binary, one command per role. See DESIGN.md's command table.
#include <cstdio>
#include <cstring>
#include <exception>

#include "commands/commands.h"

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
