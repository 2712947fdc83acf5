// The shutdown watchdog and the second signal (commands/signals.h), in child processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "commands/signals.h"
#include "common/logging.h"
#include "common/shutdown_wait.h"

namespace feedpipe::commands {
namespace {

using namespace std::chrono_literals;

// A shutdown whose action never returns, as when rd_kafka_consumer_close() never does.
[[noreturn]] void stuck_shutdown(int second_signal) {
  setup_logging("info", "text");
  ShutdownSignal signal({0ms, 0ms});
  ShutdownWait wait("something that never ends");
  signal.set_action([] { std::this_thread::sleep_for(1h); });
  kill(getpid(), SIGTERM);
  while (!signal.received()) std::this_thread::sleep_for(5ms);
  if (second_signal) kill(getpid(), second_signal);
  std::this_thread::sleep_for(1h);
  std::abort();
}

TEST(ShutdownSignalDeathTest, WatchdogEndsAShutdownThatNeverFinishes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EXIT(stuck_shutdown(0), ::testing::ExitedWithCode(kShutdownGaveUpStatus),
              "still waiting for: something that never ends");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 4s);  // drain 0 + grace 0 + 4 s
  EXPECT_LT(took, 5s + 2s);  // the child re-runs the test binary first
}

TEST(ShutdownSignalDeathTest, SecondSignalExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EXIT(stuck_shutdown(SIGTERM), ::testing::ExitedWithCode(128 + SIGTERM), "second SIGTERM");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

}  // namespace
}  // namespace feedpipe::commands
