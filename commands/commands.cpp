#include "commands/commands.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "common/config.h"
#include "common/db.h"
#include "common/kafka.h"

namespace feedpipe::commands {
namespace {

const Command kCommands[] = {
    {"standalone", "everything in one process: API, SSE, web page, consumers, embedded Kafka", standalone},
    {"producer", "the batch API: accepts batches and publishes one job per feed", producer},
    {"consumer", "a consumer group member: fetches, parses and records feeds", consumer},
    {"broadcaster", "serves batch event streams (SSE) from Kafka and SQLite", broadcaster},
    {"recorder", "records the outcomes that consumers without --db publish", recorder},
    {"migrate", "apply database migrations and exit", migrate},
    {"kafka-mock", "an embedded Kafka broker for local runs; prints its address first", kafka_mock},
    {"parse", "parse one feed file (or - for stdin) and print the normalized feed as JSON", parse},
    {"submit", "submit a batch of feed URLs to a running API", submit},
};

}  // namespace

const Command* find(const std::string& name) {
  for (const auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

std::string usage() {
  std::string out = "usage: feedpipe <command> [options]   (feedpipe <command> --help for its settings)\n\ncommands:\n";
  for (const auto& c : kCommands) {
    std::string name = c.name;
    out += "  " + name + std::string(14 - name.size(), ' ') + c.summary + "\n";
  }
  return out;
}

int run(const Command& command, int argc, char** argv) {
  try {
    return command.run(argc, argv);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "feedpipe %s: %s\n", command.name, e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("feedpipe {}: {}", command.name, e.what());
    std::fprintf(stderr, "feedpipe %s: %s\n", command.name, e.what());
    return 1;
  }
}

}  // namespace feedpipe::commands
