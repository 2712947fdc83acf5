#pragma once
// What a stopping process waits for, named while it waits, so that the shutdown watchdog
// (commands/signals.h) can say what never finished before it ends the process; and the waits a
// role gave up on (a Kafka handle left open), after which the process must end with _exit.
#include <cstdint>
#include <string>
#include <vector>

namespace feedpipe {

// Names a wait for as long as it lives.
class ShutdownWait {
 public:
  explicit ShutdownWait(std::string what);
  ~ShutdownWait();
  ShutdownWait(const ShutdownWait&) = delete;
  ShutdownWait& operator=(const ShutdownWait&) = delete;

 private:
  uint64_t id_;
};

// The waits open now, oldest first.
std::vector<std::string> shutdown_waits();

// Records that a wait was given up (its handle is leaked, its threads still run).
void shutdown_gave_up(std::string what);
std::vector<std::string> shutdown_given_up();

}  // namespace feedpipe
