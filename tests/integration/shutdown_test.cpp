// Shutdown always ends: every role exits within --drain-timeout-ms + --shutdown-grace-ms + 5 s of
// SIGTERM whatever its broker does (frozen, dying at that moment, never answering the group
// leave), a second signal exits at once, and what was not recorded is redelivered.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <iostream>

#include "common/kafka.h"
#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int16_t kOffsetCommitApiKey = 8;  // Kafka protocol ApiKeys
constexpr auto kDrain = 1000ms, kGrace = 200ms;
constexpr auto kExitLimit = kDrain + kGrace + 5s;  // the contract (DESIGN.md, Deployment shapes)

std::vector<std::string> shutdown_flags() {
  return {"--drain-timeout-ms", std::to_string(kDrain.count()), "--shutdown-grace-ms",
          std::to_string(kGrace.count())};
}

std::string port_flag(int port) { return "127.0.0.1:" + std::to_string(port); }

std::string log_tail(const Process& p) {
  std::string log = p.log();
  return log.size() > 3000 ? log.substr(log.size() - 3000) : log;
}

int done_of(const std::string& db, const std::string& batch) {
  return query_int(db, "SELECT done FROM batches WHERE id = '" + batch + "'");
}

struct Role {
  std::string name;
  std::unique_ptr<Process> process;
  int port = 0;
};

// The producer, a consumer, a broadcaster and a standalone (one more replica of each, with one
// consumer worker), a consumer without a database and a recorder on `brokers`, each with its own
// HTTP port, all ready.
std::vector<Role> start_roles(const TempDir& dir, const std::string& brokers, const std::string& tag) {
  std::vector<Role> roles;
  for (std::string name : {"producer", "consumer", "broadcaster", "standalone", "consumer-without-db", "recorder"}) {
    Role r{name, nullptr, free_port()};
    const std::string command = name == "consumer-without-db" ? "consumer" : name;
    std::vector<std::string> args{command, "--brokers", brokers, "--http", port_flag(r.port)};
    if (name != "consumer-without-db") args.insert(args.end(), {"--db", dir.file("feedpipe.db")});
    if (command == "consumer" || name == "standalone")  // some fetches are in flight at the signal
      args.insert(args.end(), {"--allow-private-networks", "--kafka-session-timeout-ms", "3000",
                               "--fetch-max-host-connections", "4"});
    if (name == "standalone") args.insert(args.end(), {"--consumers", "1"});
    for (auto& f : shutdown_flags()) args.push_back(f);
    r.process = std::make_unique<Process>(name, args, dir.file(name + tag + ".log"));
    roles.push_back(std::move(r));
  }
  for (auto& r : roles) EXPECT_TRUE(wait_ready(r.port)) << r.name << "\n" << log_tail(*r.process);
  return roles;
}

struct Exit {
  std::chrono::milliseconds after{0};
  int status = -1;  // -1: still running at the end, or ended by a signal
  bool exited = false;
};

// SIGTERM to every role at once (right after `fault`); how long each took to exit. Waits up to
// the limit + 5 s, then kills what is left.
std::vector<Exit> terminate_all(std::vector<Role>& roles, const std::function<void()>& fault) {
  fault();
  auto signalled = Clock::now();
  for (auto& r : roles) r.process->kill(SIGTERM);
  std::vector<Exit> exits(roles.size());
  wait_until([&] {
    bool all = true;
    for (size_t i = 0; i < roles.size(); ++i) {
      if (exits[i].exited) continue;
      if (roles[i].process->running()) {
        all = false;
        continue;
      }
      exits[i].exited = true;
      exits[i].after = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled);
      exits[i].status = roles[i].process->wait_exit(0ms);
    }
    return all;
  }, kExitLimit + 5s);
  for (auto& r : roles)
    if (r.process->running()) r.process->kill(SIGKILL);
  return exits;
}

enum class BrokerFault { frozen, dying };

// Rounds of: a kafka-mock process, the three roles on it with a batch in flight, then the fault
// and SIGTERM to every role at once.
void run_rounds(BrokerFault fault, int rounds) {
  FeedServer feeds;
  feeds.set_delay(500ms);
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    TempDir dir;
    Process broker("kafka-mock", {"kafka-mock"}, dir.file("kafka-mock.log"));
    std::string brokers = broker.first_line(20s);
    ASSERT_FALSE(brokers.empty()) << broker.log();
    ASSERT_TRUE(run_migrate(dir, dir.file("feedpipe.db")));
    auto roles = start_roles(dir, brokers, std::to_string(round));
    std::vector<std::string> urls;
    for (int i = 0; i < 40; ++i) urls.push_back(feeds.url(round * 100 + i));
    std::string batch = submit_batch(roles[0].port, urls);
    ASSERT_TRUE(wait_until([&] { return done_of(dir.file("feedpipe.db"), batch) >= 1; }, 30s));

    auto exits = terminate_all(roles, [&] { broker.kill(fault == BrokerFault::frozen ? SIGSTOP : SIGKILL); });
    for (size_t i = 0; i < roles.size(); ++i) {
      std::cout << "[          ] round " << round << ": " << roles[i].name << " exited after "
                << exits[i].after.count() << " ms with status " << exits[i].status << "\n";
      EXPECT_TRUE(exits[i].exited) << roles[i].name << " still running\n" << log_tail(*roles[i].process);
      EXPECT_LE(exits[i].after, kExitLimit) << roles[i].name << "\n" << log_tail(*roles[i].process);
      // 0, or the status of a shutdown that gave up on Kafka; never a crash.
      EXPECT_TRUE(exits[i].status == 0 || exits[i].status == 124)
          << roles[i].name << " status " << exits[i].status << "\n" << log_tail(*roles[i].process);
    }
    broker.kill(SIGCONT);
    broker.kill(SIGKILL);
    broker.wait_exit(10s);
  }
}

TEST(ShutdownTest, EveryRoleExitsInTimeWhenItsBrokerFreezes) { run_rounds(BrokerFault::frozen, 3); }

TEST(ShutdownTest, EveryRoleExitsInTimeWhenItsBrokerDiesAtTheSameMoment) { run_rounds(BrokerFault::dying, 3); }

class ShutdownGroupTest : public ::testing::Test {
 protected:
  std::string db() const { return dir_.file("feedpipe.db"); }

  void SetUp() override {
    ASSERT_TRUE(run_migrate(dir_, db()));
    producer_port_ = free_port();
    producer_ = start("producer", producer_port_, {});
    ASSERT_TRUE(wait_ready(producer_port_)) << producer_->log();
  }

  std::unique_ptr<Process> start(const std::string& role, int port, std::vector<std::string> extra) {
    std::vector<std::string> args{role, "--brokers", broker_.bootstrap(), "--db", db(), "--http", port_flag(port)};
    // One session timeout for every member: the mock group takes the last joiner's, and a member
    // that joins with a shorter one than the others' waited more than a minute for its assignment.
    if (role == "consumer")
      args.insert(args.end(), {"--allow-private-networks", "--kafka-session-timeout-ms", "10000"});
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(role, args, dir_.file(role + std::to_string(++started_) + ".log"));
  }

  std::string submit(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_.url(i));
    return submit_batch(producer_port_, urls);
  }

  TempDir dir_;
  FeedServer feeds_;
  EmbeddedBroker broker_;
  std::unique_ptr<Process> producer_;
  int producer_port_ = 0;
  int started_ = 0;
};

// rd_kafka_consumer_close() has no timeout of its own: it waits for every offset commit in flight
// (librdkafka 2.0.2, rd_kafka_cgrp_try_terminate: rk_consumer.wait_commit_cnt) and for the
// LeaveGroup answer (RD_KAFKA_CGRP_F_WAIT_LEAVE, 5 s at most). The broker holds the answer to the
// consumer's first offset commit here, so the close cannot finish (librdkafka gives the commit up
// only when the group session is lost: with a 10 s session, close was still waiting after 8 s).
// The consumer still exits in time, and the jobs it had not recorded are recorded once by the
// next consumer.
TEST_F(ShutdownGroupTest, ConsumerWhoseCloseNeverFinishesExitsInTimeAndNothingIsLost) {
  int port = free_port();
  auto consumer = start("consumer", port, shutdown_flags());
  ASSERT_TRUE(wait_ready(port)) << consumer->log();
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), 1, kOffsetCommitApiKey, 1,
                                                         RD_KAFKA_RESP_ERR_NO_ERROR, 600000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  feeds_.hold_requests_after(6);
  std::string batch = submit(0, 16);
  auto commit_held = [&] {
    size_t left = 1;
    rd_kafka_mock_broker_error_stack_cnt(broker_.cluster(), 1, kOffsetCommitApiKey, &left);
    return left == 0;  // the first OffsetCommit request arrived and its answer is being held
  };
  ASSERT_TRUE(wait_until([&] { return done_of(db(), batch) >= 6 && feeds_.total_requests() > 6 && commit_held(); }, 30s))
      << consumer->log();

  auto signalled = Clock::now();
  consumer->kill(SIGTERM);
  int status = consumer->wait_exit(kExitLimit + 5s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled);
  std::cout << "[          ] consumer exited after " << took.count() << " ms with status " << status << "\n";
  EXPECT_LE(took, kExitLimit) << consumer->log();
  EXPECT_EQ(status, 124) << consumer->log();
  EXPECT_NE(consumer->log().find("giving up"), std::string::npos) << consumer->log();
  EXPECT_LT(done_of(db(), batch), 16);

  feeds_.hold_requests(false);
  int next_port = free_port();
  auto next = start("consumer", next_port, {});
  ASSERT_TRUE(wait_until([&] { return done_of(db(), batch) == 16; }, 60s)) << next->log();
  std::this_thread::sleep_for(500ms);  // a duplicate would show up now
  EXPECT_EQ(query_int(db(), "SELECT count(*) FROM events WHERE batch_id = '" + batch + "'"), 16 + 1);
  EXPECT_EQ(query_int(db(), "SELECT count(*) FROM jobs WHERE batch_id = '" + batch + "' AND status = 'ok'"), 16);
  EXPECT_EQ(query_int(db(), "SELECT count(*) FROM (SELECT job_id FROM events WHERE job_id IS NOT NULL "
                            "GROUP BY job_id HAVING count(*) > 1)"), 0);
  EXPECT_EQ(integrity_check(db()), "ok");
}

// A consumer draining with a long timeout (its fetches held by the feed server) exits at once on
// a second signal, SIGINT after SIGTERM.
TEST_F(ShutdownGroupTest, SecondSignalExitsAtOnce) {
  int port = free_port();
  auto consumer = start("consumer", port, {"--drain-timeout-ms", "60000"});
  ASSERT_TRUE(wait_ready(port)) << consumer->log();
  feeds_.hold_requests(true);
  submit(200, 4);
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() >= 1; }, 30s));
  consumer->kill(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return consumer->log().find("shutting down") != std::string::npos; }, 5s));
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(consumer->running()) << "the drain should still wait for the held fetches";
  auto signalled = Clock::now();
  consumer->kill(SIGINT);
  int status = consumer->wait_exit(5s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled);
  std::cout << "[          ] consumer exited " << took.count() << " ms after the second signal\n";
  EXPECT_EQ(status, 128 + SIGINT) << consumer->log();
  EXPECT_LE(took, 1s);
  EXPECT_NE(consumer->log().find("second SIGINT"), std::string::npos) << consumer->log();
  feeds_.hold_requests(false);
}

}  // namespace
}  // namespace feedpipe::testing
