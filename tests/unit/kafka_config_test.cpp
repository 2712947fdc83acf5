// --kafka-config: the file's format, the properties it may not set, the precedence of feedpipe's
// defaults < the file < explicit --kafka-* flags, and secrets kept out of messages and logs.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "commands/role_settings.h"
#include "common/config.h"
#include "common/kafka.h"

namespace feedpipe {
namespace {

// A --kafka-config file in /tmp, removed on destruction.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text) {
    char name[] = "/tmp/feedpipe-kafka-config-XXXXXX";
    int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~ConfigFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

std::string get(RdKafka::Conf& conf, const std::string& name) {
  std::string value;
  EXPECT_EQ(conf.get(name, value), RdKafka::Conf::CONF_OK) << name;
  return value;
}

// The Kafka settings of a command given `args` (after the command name).
KafkaSettings settings_of(std::vector<std::string> args) {
  Settings s("test", "test");
  commands::add_common_settings(s);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  s.parse(static_cast<int>(argv.size()), argv.data());
  return commands::kafka_settings(s);
}

TEST(KafkaConfigFile, ReadsKeyValueLinesSkippingCommentsAndBlankLinesTrimmingWhitespace) {
  auto props = parse_kafka_config(
      "# a comment\n"
      "! another comment\n"
      "\n"
      "   \t\n"
      "  security.protocol =  SASL_SSL  \n"
      "sasl.jaas.config.equivalent=a=b=c\n"
      "\t# indented comment\r\n"
      "client.id=\r\n"
      "linger.ms=20",
      "kafka.properties");
  ASSERT_EQ(props.size(), 4u);
  EXPECT_EQ(props[0].name, "security.protocol");
  EXPECT_EQ(props[0].value, "SASL_SSL");
  EXPECT_EQ(props[0].line, 5);
  EXPECT_EQ(props[1].name, "sasl.jaas.config.equivalent");
  EXPECT_EQ(props[1].value, "a=b=c");  // split at the first '='
  EXPECT_EQ(props[2].name, "client.id");
  EXPECT_EQ(props[2].value, "");
  EXPECT_EQ(props[2].line, 8);
  EXPECT_EQ(props[3].name, "linger.ms");  // a last line without a newline
  EXPECT_EQ(props[3].value, "20");
  EXPECT_EQ(props[3].line, 9);
}

TEST(KafkaConfigFile, ALineWithoutEqualsNamesTheFileAndLineButNotItsText) {
  std::string e = error_of([] { parse_kafka_config("# ok\nlinger.ms=5\nsasl.password hunter2\n", "/etc/k.properties"); });
  EXPECT_NE(e.find("/etc/k.properties line 3"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  e = error_of([] { parse_kafka_config("=value\n", "f"); });
  EXPECT_NE(e.find("f line 1"), std::string::npos) << e;
}

TEST(KafkaConfigFile, AMissingFileIsAConfigError) {
  std::string e = error_of([] { read_kafka_config("/nonexistent/kafka.properties"); });
  EXPECT_NE(e.find("/nonexistent/kafka.properties"), std::string::npos) << e;
}

TEST(KafkaConfigFile, RefusesPropertiesFeedpipeDependsOnSayingWhy) {
  for (const char* line : {"enable.auto.commit=true", "enable.auto.offset.store=true", "group.id=mine",
                           "enable.idempotence=false", "acks=1", "request.required.acks=1",
                           "partition.assignment.strategy=range", "auto.offset.reset=latest",
                           "transactional.id=t", "dr_cb=x"}) {
    ConfigFile file(std::string("linger.ms=5\n") + line + "\n");
    std::string e = error_of([&] { settings_of({"--kafka-config", file.path()}); });
    std::string name(line, std::string(line).find('='));
    EXPECT_NE(e.find(file.path() + " line 2: " + name + " cannot be set here: "), std::string::npos) << e;
  }
}

TEST(KafkaConfigFile, AnUnknownOrInvalidPropertyStopsWithLibrdkafkasMessage) {
  ConfigFile unknown("client.id=a\nno.such.property=1\n");
  std::string e = error_of([&] { settings_of({"--kafka-config", unknown.path()}); });
  EXPECT_NE(e.find(unknown.path() + " line 2"), std::string::npos) << e;
  EXPECT_NE(e.find("No such configuration property"), std::string::npos) << e;
  EXPECT_NE(e.find("no.such.property"), std::string::npos) << e;

  ConfigFile invalid("linger.ms=soon\n");
  e = error_of([&] { settings_of({"--kafka-config", invalid.path()}); });
  EXPECT_NE(e.find(invalid.path() + " line 1"), std::string::npos) << e;
  EXPECT_NE(e.find("linger.ms"), std::string::npos) << e;
  EXPECT_NE(e.find("Invalid value"), std::string::npos) << e;
}

TEST(KafkaSecrets, SecretValuesNeverAppearInErrors) {
  for (const char* name : {"sasl.password", "ssl.key.password", "ssl.keystore.password",
                           "sasl.oauthbearer.client.secret", "ssl.key.pem", "my.secret.thing"})
    EXPECT_TRUE(is_secret_kafka_property(name)) << name;
  EXPECT_FALSE(is_secret_kafka_property("sasl.username"));

  ConfigFile file("my.secret.thing=s3cr3t-value-1\n");
  std::string e = error_of([&] { settings_of({"--kafka-config", file.path()}); });
  EXPECT_NE(e.find("my.secret.thing"), std::string::npos) << e;
  EXPECT_EQ(e.find("s3cr3t-value-1"), std::string::npos) << e;
  EXPECT_EQ(redact_kafka_secrets("a s3cr3t-value-1 b s3cr3t-value-1"), "a [redacted] b [redacted]");
}

TEST(KafkaSecrets, TheDebugLineOfEachClientRedactsThem) {
  ConfigFile file("sasl.password=s3cr3t-value-2\nclient.id=fp-unit\n");
  KafkaSettings k = settings_of({"--brokers", "127.0.0.1:1", "--kafka-config", file.path()});
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>("kafka-config-test",
                                                 std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->set_level(spdlog::level::debug);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  make_conf(k, producer_client(k, "jobs producer"));
  spdlog::set_default_logger(previous);
  std::string log = out.str();
  EXPECT_NE(log.find("kafka client jobs producer: "), std::string::npos) << log;
  EXPECT_NE(log.find("client.id=fp-unit"), std::string::npos) << log;
  EXPECT_NE(log.find("sasl.password=[redacted]"), std::string::npos) << log;
  EXPECT_EQ(log.find("s3cr3t-value-2"), std::string::npos) << log;
}

TEST(KafkaPrecedence, DefaultsThenFileThenExplicitFlags) {
  ConfigFile file(
      "linger.ms=50\ncompression.type=zstd\nfetch.wait.max.ms=100\nsession.timeout.ms=45000\n"
      "client.id=from-file\n");
  // No flags: the file overrides every feedpipe default.
  KafkaSettings k = settings_of({"--brokers", "127.0.0.1:1", "--kafka-config", file.path()});
  auto producer = make_conf(k, producer_client(k, "p"));
  EXPECT_EQ(get(*producer, "linger.ms"), "50");
  EXPECT_EQ(get(*producer, "compression.type"), "zstd");
  EXPECT_EQ(get(*producer, "client.id"), "from-file");
  EXPECT_EQ(get(*producer, "enable.idempotence"), "true");
  auto client = consumer_client(k, "c", "g");
  client.defaults["session.timeout.ms"] = std::to_string(k.session_timeout_ms);
  auto consumer = make_conf(k, client);
  EXPECT_EQ(get(*consumer, "fetch.wait.max.ms"), "100");
  EXPECT_EQ(get(*consumer, "session.timeout.ms"), "45000");
  EXPECT_EQ(get(*consumer, "enable.auto.commit"), "false");
  EXPECT_EQ(get(*consumer, "group.id"), "g");

  // Flags given explicitly (even at their default value, or through the environment) win.
  ::setenv("FEEDPIPE_KAFKA_COMPRESSION", "gzip", 1);
  k = settings_of({"--brokers", "127.0.0.1:1", "--kafka-config", file.path(), "--kafka-linger-ms", "5",
                   "--kafka-session-timeout-ms=9000"});
  ::unsetenv("FEEDPIPE_KAFKA_COMPRESSION");
  producer = make_conf(k, producer_client(k, "p"));
  EXPECT_EQ(get(*producer, "linger.ms"), "5");
  EXPECT_EQ(get(*producer, "compression.type"), "gzip");
  client = consumer_client(k, "c", "g");
  client.defaults["session.timeout.ms"] = std::to_string(k.session_timeout_ms);
  consumer = make_conf(k, client);
  EXPECT_EQ(get(*consumer, "session.timeout.ms"), "9000");
  EXPECT_EQ(get(*consumer, "fetch.wait.max.ms"), "100");  // its flag was not given

  // Without a file, the defaults.
  k = settings_of({"--brokers", "127.0.0.1:1"});
  producer = make_conf(k, producer_client(k, "p"));
  EXPECT_EQ(get(*producer, "linger.ms"), "5");
  EXPECT_EQ(get(*producer, "compression.type"), "lz4");
  EXPECT_EQ(get(*producer, "client.id"), "feedpipe");
}

TEST(KafkaPrecedence, TheFilesBootstrapServersUnlessBrokersIsGiven) {
  ConfigFile file("bootstrap.servers=kafka.example:9093\n");
  EXPECT_EQ(settings_of({"--kafka-config", file.path()}).brokers, "kafka.example:9093");
  KafkaSettings k = settings_of({"--kafka-config", file.path(), "--brokers", "127.0.0.1:1"});
  EXPECT_EQ(k.brokers, "127.0.0.1:1");
  EXPECT_EQ(get(*make_conf(k, producer_client(k, "p")), "bootstrap.servers"), "127.0.0.1:1");
}

TEST(KafkaPrecedence, AClientsRequiredPropertyIsRefusedInTheFile) {
  ConfigFile file("client.rack=b\n");
  KafkaSettings k = settings_of({"--brokers", "127.0.0.1:1", "--kafka-config", file.path()});
  std::string e = error_of([&] { make_conf(k, {"rack client", {}, {{"client.rack", "a"}}}); });
  EXPECT_NE(e.find("client.rack cannot be set here"), std::string::npos) << e;
}

TEST(SettingsGiven, TrueForAFlagOrEnvironmentVariableNotForADefault) {
  Settings s("test", "test");
  s.add("a", "1", "").add("b", "2", "").add("c", "3", "").add_switch("d", "");
  ::setenv("FEEDPIPE_B", "2", 1);
  std::string a = "--a=1", d = "--d";
  char* argv[] = {a.data(), d.data()};
  s.parse(2, argv);
  ::unsetenv("FEEDPIPE_B");
  EXPECT_TRUE(s.given("a"));
  EXPECT_TRUE(s.given("b"));
  EXPECT_FALSE(s.given("c"));
  EXPECT_TRUE(s.given("d"));
}

}  // namespace
}  // namespace feedpipe
