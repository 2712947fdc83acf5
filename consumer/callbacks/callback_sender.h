#pragma once
// The callback sender (DESIGN.md, Callbacks): a thread of the process that records batch
// completions (standalone, consumer --db, recorder) that claims due callbacks from the SQLite
// queue (common/callbacks/callback_store.h), POSTs them on one libcurl multi handle (up to
// max_in_flight at once, so a slow receiver holds only its own slot), and records each attempt:
// delivered, retried later (common/callbacks/retry_schedule.h) or failed. Counts attempts in
// feedpipe_callback_attempts_total{result="delivered|retry|failed|refused"}.
//
// Threads: start() and stop() from one thread; stop() ends the transfers in flight and gives
// their claims back (they are sent again, by this process after a restart or by another sender).
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "consumer/callbacks/callback_settings.h"

namespace feedpipe::callbacks {

class CallbackSender {
 public:
  explicit CallbackSender(CallbackSettings settings);
  ~CallbackSender();  // stop()
  CallbackSender(const CallbackSender&) = delete;
  CallbackSender& operator=(const CallbackSender&) = delete;

  void start();
  void stop();  // idempotent; returns within about one poll interval

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace feedpipe::callbacks
