#pragma once
// Shutdown on SIGINT/SIGTERM: the signals are blocked in every thread and taken by one waiter
// thread, which runs the action once. Construct it before starting any other thread, so that
// every thread inherits the blocked signals.
#include <functional>

namespace feedpipe::commands {

class ShutdownSignal {
 public:
  ShutdownSignal();
  ~ShutdownSignal();
  void set_action(std::function<void()> action);
  // Blocks until a signal arrived (for commands with nothing else to wait on).
  void wait();

 private:
  struct State;
  State* state_;
};

}  // namespace feedpipe::commands
