#include "consumer/callbacks/callback_sender.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>

#include "common/callbacks/callback_store.h"
#include "common/clock.h"
#include "common/db.h"
#include "common/metrics.h"
#include "common/shutdown_wait.h"
#include "common/thread_name.h"
#include "consumer/callbacks/callback_attempt.h"

namespace feedpipe::callbacks {
namespace {

metrics::Counter& attempts_total(const char* result) {
  return metrics::counter("feedpipe_callback_attempts_total",
                          "Callback POSTs finished, by result: delivered (2xx), retry (to be tried again), "
                          "failed (given up: too old), refused (the address rules forbid the URL).",
                          std::string("result=\"") + result + "\"");
}

// This sender's name in the claim column: unique per process start.
std::string claimer_name() {
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + new_delivery_id().substr(0, 8);
}

}  // namespace

class CallbackSender::Loop {
 public:
  explicit Loop(CallbackSettings settings)
      : settings_(std::move(settings)),
        policy_(settings_.allow_private_networks, settings_.allow_networks),
        claimer_(claimer_name()),
        multi_(curl_multi_init()) {
    for (const char* result : {"delivered", "retry", "failed", "refused"}) attempts_total(result);
  }

  ~Loop() {
    if (multi_) curl_multi_cleanup(multi_);
  }

  void request_stop() {
    stop_ = true;
    if (multi_) curl_multi_wakeup(multi_);
  }

  void run() {
    if (multi_ == nullptr) {
      spdlog::error("callbacks: curl_multi_init failed; no callback is sent by this process");
      return;
    }
    spdlog::info("callbacks: sending due callbacks from {} (up to {} at once{})", settings_.db_path,
                 settings_.max_in_flight, settings_.secret.empty() ? ", unsigned: no --callback-secret" : ", signed");
    int64_t next_claim_ms = 0;
    while (!stop_) {
      const int64_t now = now_ms();
      if (in_flight_.size() < settings_.max_in_flight && now >= next_claim_ms) next_claim_ms = claim(now);
      int running = 0;
      curl_multi_perform(multi_, &running);
      if (finish_done() > 0) next_claim_ms = 0;  // a slot is free, and a retry may be due soon
      const int64_t wait = std::clamp<int64_t>(next_claim_ms - now_ms(), 1, settings_.poll_interval.count());
      curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait), nullptr);
    }
    give_back_in_flight();
  }

 private:
  Database& db() {
    if (!db_) db_ = std::make_unique<Database>(settings_.db_path);
    return *db_;
  }

  // Claims what is due and starts it; returns when to look again.
  int64_t claim(int64_t now) {
    const size_t room = settings_.max_in_flight - in_flight_.size();
    const int64_t next_poll = now + settings_.poll_interval.count();
    std::vector<ClaimedCallback> claimed;
    try {
      // A read first: the claim is a write transaction, not worth taking when nothing is due.
      std::optional<int64_t> due = next_due_ms(db());
      if (!due || *due > now) return due ? std::min(*due, next_poll) : next_poll;
      claimed = claim_due(db(), claimer_, now, settings_.claim_lease.count(), room);
    } catch (const std::exception& e) {
      spdlog::warn("callbacks: cannot read the queue ({}); retrying in {} ms", e.what(), settings_.poll_interval.count());
      db_.reset();
      return next_poll;
    }
    for (auto& callback : claimed) start(std::move(callback), now);
    // A full claim may have left more due: look again at once.
    return claimed.size() == room ? now : next_poll;
  }

  void start(ClaimedCallback callback, int64_t now) {
    const std::string batch_id = callback.batch_id;
    try {
      auto attempt = std::make_unique<CallbackAttempt>(std::move(callback), settings_, policy_, now / 1000);
      CURL* easy = attempt->handle();
      CURLMcode mc = curl_multi_add_handle(multi_, easy);
      if (mc != CURLM_OK) throw std::runtime_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
      spdlog::debug("callbacks: batch {} attempt {} to {}", batch_id, attempt->callback().attempts + 1,
                    attempt->callback().url);
      in_flight_.emplace(easy, std::move(attempt));
    } catch (const std::exception& e) {
      spdlog::warn("callbacks: batch {}: {}; its callback is tried again after its lease", batch_id, e.what());
    }
  }

  // Records the attempts that ended; returns how many.
  size_t finish_done() {
    size_t finished = 0;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = in_flight_.find(msg->easy_handle);
      if (it == in_flight_.end()) continue;
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi_, it->first);
      std::unique_ptr<CallbackAttempt> attempt = std::move(it->second);
      in_flight_.erase(it);
      record(*attempt, attempt->finish(code));
      ++finished;
    }
    return finished;
  }

  void record(const CallbackAttempt& attempt, const AttemptOutcome& outcome) {
    const ClaimedCallback& cb = attempt.callback();
    const int64_t attempts = cb.attempts + 1;
    try {
      bool kept = true;
      switch (outcome.result) {
        case AttemptResult::delivered:
          kept = record_delivered(db(), cb.batch_id, claimer_);
          attempts_total("delivered").add();
          spdlog::info("callback of batch {} delivered to {} (HTTP {}, attempt {}, delivery {})", cb.batch_id, cb.url,
                       outcome.http_status, attempts, cb.delivery_id);
          break;
        case AttemptResult::refused:
          kept = record_failed(db(), cb.batch_id, claimer_, outcome.error);
          attempts_total("refused").add();
          spdlog::info("callback of batch {} to {} failed: {} (see --allow-networks)", cb.batch_id, cb.url,
                       outcome.error);
          break;
        case AttemptResult::retry: {
          const int64_t now = now_ms();
          RetryDecision next = next_attempt(settings_.retry, cb.created_at_ms, now, attempts);
          if (next.give_up) {
            const std::string error = outcome.error + " (gave up after " + std::to_string(attempts) + " attempts)";
            kept = record_failed(db(), cb.batch_id, claimer_, error);
            attempts_total("failed").add();
            spdlog::info("callback of batch {} to {} failed: {}", cb.batch_id, cb.url, error);
          } else {
            kept = record_retry(db(), cb.batch_id, claimer_, outcome.error, next.next_attempt_at_ms);
            attempts_total("retry").add();
            spdlog::info("callback of batch {} to {}: attempt {} {}; next in {} ms", cb.batch_id, cb.url, attempts,
                         outcome.error, next.next_attempt_at_ms - now);
          }
          break;
        }
      }
      if (!kept)
        spdlog::warn("callbacks: batch {}: the claim expired during the attempt (raise --callback-claim-lease-ms "
                     "above --callback-timeout-ms); another sender owns it now",
                     cb.batch_id);
    } catch (const std::exception& e) {
      spdlog::error("callbacks: cannot record the attempt of batch {} ({}); it is sent again after its lease",
                    cb.batch_id, e.what());
      db_.reset();
    }
  }

  void give_back_in_flight() {
    for (auto& [easy, attempt] : in_flight_) {
      curl_multi_remove_handle(multi_, easy);
      try {
        release_claim(db(), attempt->callback().batch_id, claimer_);
      } catch (const std::exception& e) {
        spdlog::warn("callbacks: batch {}: claim not given back ({}); it is sent again after its lease",
                     attempt->callback().batch_id, e.what());
      }
    }
    in_flight_.clear();
  }

  CallbackSettings settings_;
  fetcher::AddressPolicy policy_;
  std::string claimer_;
  CURLM* multi_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Database> db_;
  std::map<CURL*, std::unique_ptr<CallbackAttempt>> in_flight_;
};

CallbackSender::CallbackSender(CallbackSettings settings) : loop_(std::make_unique<Loop>(std::move(settings))) {}

CallbackSender::~CallbackSender() { stop(); }

void CallbackSender::start() {
  if (thread_.joinable()) return;
  thread_ = named_thread("fp-callbacks", [this] { loop_->run(); });
}

void CallbackSender::stop() {
  loop_->request_stop();
  if (thread_.joinable()) {
    ShutdownWait wait("the callback sender");
    thread_.join();
  }
}

}  // namespace feedpipe::callbacks
