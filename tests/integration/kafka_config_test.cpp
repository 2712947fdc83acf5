// --kafka-config as an operator uses it: every role, as a process of its own, applies the file to
// each of its Kafka clients (seen in the debug line each client logs), never logs a secret, and a
// bad file stops every role at start with status 2.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/kafka.h"
#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSecret = "hunter2-kcfg-secret";

// The lines of `log` that begin a client's configuration ("kafka client NAME: ...").
std::vector<std::string> client_lines(const std::string& log, const std::string& client) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.find("kafka client " + client + ": ") != std::string::npos) lines.push_back(line);
  return lines;
}

class KafkaConfigTest : public ::testing::Test {
 protected:
  std::string write_config(const std::string& name, const std::string& text) {
    std::string path = dir_.file(name);
    std::ofstream(path) << text;
    return path;
  }

  std::unique_ptr<Process> start(const std::string& role, const std::string& config,
                                 std::vector<std::string> extra) {
    std::vector<std::string> args{role, "--db", dir_.file(role + ".db"), "--kafka-config", config,
                                  "--log-level", "debug"};
    if (role == "producer" || role == "broadcaster" || role == "standalone")
      args.insert(args.end(), {"--http", "127.0.0.1:" + std::to_string(free_port())});
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(role, args, dir_.file(role + ".log"));
  }

  TempDir dir_;
};

TEST_F(KafkaConfigTest, EveryClientOfEveryRoleTakesTheFileAndNoSecretIsLogged) {
  EmbeddedBroker broker(2);
  std::string config = write_config("kafka.properties",
                                    "# as in a managed cluster's client.properties\n"
                                    "client.id = fp-kcfg-test\n"
                                    "! SASL is not used against the embedded broker; the value is only kept\n"
                                    "sasl.username=feedpipe\n"
                                    "sasl.password=" + std::string(kSecret) + "\n"
                                    "debug=conf\n");
  const std::map<std::string, std::vector<std::string>> clients = {
      {"standalone", {"jobs producer", "events producer", "group consumer", "events reader"}},
      {"producer", {"admin", "jobs producer"}},
      {"consumer", {"admin", "events producer", "group consumer"}},
      {"broadcaster", {"admin", "events reader"}},
      {"recorder", {"admin", "events producer", "recorder consumer"}},
  };
  std::map<std::string, std::unique_ptr<Process>> processes;
  for (const auto& [role, names] : clients) {
    std::vector<std::string> extra;
    if (role == "standalone") extra = {"--consumers", "1"};  // its embedded broker
    else extra = {"--brokers", broker.bootstrap()};
    processes[role] = start(role, config, extra);
  }
  for (const auto& [role, names] : clients) {
    Process& p = *processes[role];
    bool all = wait_until([&] {
      for (const auto& name : names)
        if (client_lines(p.log(), name).empty()) return false;
      return true;
    }, 30s);
    EXPECT_TRUE(all) << role << ":\n" << p.log();
    for (const auto& name : names)
      for (const auto& line : client_lines(p.log(), name)) {
        EXPECT_NE(line.find("client.id=fp-kcfg-test"), std::string::npos) << role << ": " << line;
        EXPECT_NE(line.find("sasl.password=[redacted]"), std::string::npos) << role << ": " << line;
      }
  }
  for (auto& [role, p] : processes) {
    p->kill(SIGTERM);
    p->wait_exit(20s);
    EXPECT_EQ(p->log().find(kSecret), std::string::npos) << role << ":\n" << p->log();
    EXPECT_EQ(p->output().find(kSecret), std::string::npos) << role;
  }
}

TEST_F(KafkaConfigTest, ABadFileStopsEveryRoleAtStartWithStatus2) {
  struct Case {
    std::string text, expected;
  };
  const Case cases[] = {
      {"linger.ms=5\nno.such.property=1\n", "line 2: kafka property no.such.property=1: No such configuration property"},
      {"linger.ms=later\n", "line 1: kafka property linger.ms=later: Invalid value"},
      {"enable.auto.commit=true\n", "line 1: enable.auto.commit cannot be set here: feedpipe commits offsets itself"},
      {"sasl.password " + std::string(kSecret) + "\n", "line 1: expected key=value"},
  };
  int n = 0;
  for (const auto& c : cases) {
    std::string config = write_config("bad" + std::to_string(++n) + ".properties", c.text);
    for (const std::string role : {"standalone", "producer", "consumer", "broadcaster"}) {
      auto p = start(role, config, {"--brokers", "127.0.0.1:1"});
      EXPECT_EQ(p->wait_exit(20s), 2) << role << " " << c.text;
      std::string log = p->log();
      EXPECT_NE(log.find("--kafka-config " + config + " " + c.expected), std::string::npos)
          << role << ":\n" << log;
      EXPECT_EQ(log.find(kSecret), std::string::npos) << role << ":\n" << log;
    }
  }
}

}  // namespace
}  // namespace feedpipe::testing
