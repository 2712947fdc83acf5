#pragma once
// Shutdown on SIGINT/SIGTERM: the signals are blocked in every thread and taken by one waiter
// thread. The first signal runs the action (on a thread of its own) and arms a watchdog: if the
// process has not finished stopping after drain + grace + 4 s, whatever it waits for (librdkafka
// included), the watchdog logs the waits still open (common/shutdown_wait.h) and ends the
// process with _exit(kShutdownGaveUpStatus). A second signal ends it at once (status 128 +
// signal). Nothing recorded is lost: SQLite writes are transactions, and Kafka offsets not
// committed are redelivered.
// Construct it before starting any other thread, so that every thread inherits the blocked
// signals; destroy it last (it then ends the process with _exit when a role gave up a wait).
#include <chrono>
#include <functional>

namespace feedpipe::commands {

// The exit status of a shutdown that gave up waiting (for Kafka, mostly): `timeout`'s.
constexpr int kShutdownGaveUpStatus = 124;

struct ShutdownLimits {
  std::chrono::milliseconds drain{10000};  // --drain-timeout-ms
  std::chrono::milliseconds grace{1000};   // --shutdown-grace-ms
  // The watchdog fires this long after the first signal.
  std::chrono::milliseconds watchdog() const { return drain + grace + std::chrono::seconds(4); }
};

class ShutdownSignal {
 public:
  explicit ShutdownSignal(ShutdownLimits limits = {});
  ~ShutdownSignal();
  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;
  void set_action(std::function<void()> action);
  // Blocks until a signal arrived and its action ran (for commands with nothing else to wait on).
  void wait();
  // True once a signal arrived (a signal during start-up finds no action to run).
  bool received() const;

 private:
  struct State;
  State* state_;
};

}  // namespace feedpipe::commands
