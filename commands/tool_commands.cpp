// The short-lived commands: migrate, kafka-mock, parse and submit.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "commands/commands.h"
#include "commands/role_settings.h"
#include "commands/signals.h"
#include "common/migrations.h"
#include "consumer/parser/parser.h"

namespace feedpipe::commands {

int migrate(int argc, char** argv) {
  Settings s("migrate", "Applies the database migrations that are missing, then exits.");
  s.add("db", "./feedpipe.db", "SQLite database file")
      .add("log-level", "info", "trace, debug, info, warn or error")
      .add("log-format", "text", "text or json");
  if (!parse_settings(s, argc, argv)) return 0;
  Database db(s.str("db"));
  int applied = apply_migrations(db);
  std::printf("%d migration(s) applied to %s\n", applied, s.str("db").c_str());
  return 0;
}

int kafka_mock(int argc, char** argv) {
  Settings s("kafka-mock",
             "Runs an embedded Kafka broker (librdkafka's mock cluster) on loopback until SIGTERM or\n"
             "SIGINT. The first line on stdout is its bootstrap address. Messages live in memory only.");
  s.add("kafka-partitions", "12", "partitions of feedpipe's topics")
      .add("brokers-count", "1", "mock brokers in the cluster")
      .add("log-level", "info", "trace, debug, info, warn or error")
      .add("log-format", "text", "text or json");
  if (!parse_settings(s, argc, argv)) return 0;
  ShutdownSignal signal;
  EmbeddedBroker broker(static_cast<int>(s.integer("kafka-partitions")),
                        static_cast<int>(s.integer("brokers-count")));
  std::printf("%s\n", broker.bootstrap().c_str());
  std::fflush(stdout);
  spdlog::info("kafka-mock serving on {}", broker.bootstrap());
  signal.wait();
  return 0;
}

int parse(int argc, char** argv) {
  Settings s("parse", "Parses one feed document and prints the normalized feed as JSON.");
  s.positional("FILE|-");
  s.add("base", "", "URL that relative links resolve against")
      .add("charset", "", "charset as an HTTP Content-Type would give it")
      .add("log-level", "warn", "trace, debug, info, warn or error")
      .add("log-format", "text", "text or json");
  if (!parse_settings(s, argc, argv)) return 0;
  if (s.args().size() != 1) throw ConfigError("give exactly one FILE, or - for standard input");
  std::string document;
  if (s.args()[0] == "-") {
    document.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(s.args()[0], std::ios::binary);
    if (!in) throw ConfigError("cannot read " + s.args()[0]);
    document.assign(std::istreambuf_iterator<char>(in), {});
  }
  parser::ParseOptions options;
  options.base_url = s.str("base");
  options.http_charset = s.str("charset");
  auto result = parser::parse_feed(document, options);
  if (!result) {
    std::fprintf(stderr, "feedpipe parse: %s\n", result.error.c_str());
    return 1;
  }
  std::printf("%s\n", parser::to_json(*result.feed).dump(2).c_str());
  return 0;
}

}  // namespace feedpipe::commands
