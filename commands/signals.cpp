#include "commands/signals.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/shutdown_wait.h"

namespace feedpipe::commands {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : "; ") + item;
  return out.empty() ? "nothing named" : out;
}

// Logs a last line and ends the process without running destructors (a thread may be stuck
// inside librdkafka, holding its locks). SIGALRM's default action ends the process should the
// log itself block (a stalled stderr).
[[noreturn]] void exit_now(int status, const std::string& line) {
  alarm(1);
  spdlog::error("{}", line);
  spdlog::default_logger()->flush();
  _exit(status);
}

const char* signal_name(int sig) { return sig == SIGTERM ? "SIGTERM" : "SIGINT"; }

}  // namespace

struct ShutdownSignal::State {
  ShutdownLimits limits;
  std::function<void()> action;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> received{false};
  bool fired = false;
  std::atomic<bool> closing{false};
  std::thread waiter, runner;
};

ShutdownSignal::ShutdownSignal(ShutdownLimits limits) : state_(new State) {
  state_->limits = limits;
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
    spdlog::info("received {}, shutting down (a second signal exits at once; the watchdog ends "
                 "the process after {} ms)", signal_name(sig), st->limits.watchdog().count());
    st->received = true;
    {
      std::lock_guard lock(st->mu);
      st->runner = std::thread([st] {
        std::unique_lock lock(st->mu);
        auto action = st->action;
        lock.unlock();
        if (action) action();
        lock.lock();
        st->fired = true;
        st->cv.notify_all();
      });
    }
    auto deadline = std::chrono::steady_clock::now() + st->limits.watchdog();
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      timespec ts{static_cast<time_t>(left.count() / 1000000000), static_cast<long>(left.count() % 1000000000)};
      siginfo_t info;
      int got = sigtimedwait(&set, &info, &ts);
      if (got < 0) continue;  // EAGAIN (the deadline: checked above) or EINTR
      if (st->closing) return;
      exit_now(128 + got, std::string("received a second ") + signal_name(got) + ": exiting at once");
    }
    exit_now(kShutdownGaveUpStatus,
             "shutdown watchdog: not stopped " + std::to_string(st->limits.watchdog().count()) +
                 " ms after the signal; still waiting for: " + joined(shutdown_waits()) +
                 "; exiting now (jobs not recorded are redelivered)");
  });
}

ShutdownSignal::~ShutdownSignal() {
  state_->closing = true;
  pthread_kill(state_->waiter.native_handle(), SIGTERM);
  state_->waiter.join();
  if (state_->runner.joinable()) state_->runner.join();
  // A role that gave up a wait left a librdkafka handle open, whose threads must not see the
  // static destructors run.
  if (auto given_up = shutdown_given_up(); !given_up.empty())
    exit_now(kShutdownGaveUpStatus, "stopped without waiting any longer for: " + joined(given_up) +
                                        " (jobs not recorded are redelivered)");
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

bool ShutdownSignal::received() const { return state_->received; }

}  // namespace feedpipe::commands
