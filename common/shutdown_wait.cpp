#include "common/shutdown_wait.h"

#include <map>
#include <mutex>

namespace feedpipe {
namespace {

struct Registry {
  std::mutex mu;
  uint64_t next = 0;
  std::map<uint64_t, std::string> open;
  std::vector<std::string> given_up;
};

// Never destroyed: the watchdog may read it while static destructors run.
Registry& registry() {
  static auto* r = new Registry;
  return *r;
}

}  // namespace

ShutdownWait::ShutdownWait(std::string what) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  id_ = ++r.next;
  r.open.emplace(id_, std::move(what));
}

ShutdownWait::~ShutdownWait() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.open.erase(id_);
}

std::vector<std::string> shutdown_waits() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [id, what] : r.open) out.push_back(what);
  return out;
}

void shutdown_gave_up(std::string what) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.given_up.push_back(std::move(what));
}

std::vector<std::string> shutdown_given_up() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  return r.given_up;
}

}  // namespace feedpipe
