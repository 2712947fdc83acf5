#include "commands/signals.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace feedpipe::commands {

struct ShutdownSignal::State {
  std::function<void()> action;
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  std::atomic<bool> closing{false};
  std::thread waiter;
};

ShutdownSignal::ShutdownSignal() : state_(new State) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  State* st = state_;
  st->waiter = std::thread([st, set] {
    int sig = 0;
    sigwait(&set, &sig);
    if (st->closing) return;  // the destructor's wake-up
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    std::unique_lock lock(st->mu);
    auto action = st->action;
    lock.unlock();
    if (action) action();
    lock.lock();
    st->fired = true;
    st->cv.notify_all();
  });
}

ShutdownSignal::~ShutdownSignal() {
  {
    std::lock_guard lock(state_->mu);
    if (!state_->fired) {
      state_->closing = true;
      pthread_kill(state_->waiter.native_handle(), SIGTERM);
    }
  }
  state_->waiter.join();
  delete state_;
}

void ShutdownSignal::set_action(std::function<void()> action) {
  std::lock_guard lock(state_->mu);
  state_->action = std::move(action);
}

void ShutdownSignal::wait() {
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [this] { return state_->fired; });
}

}  // namespace feedpipe::commands
