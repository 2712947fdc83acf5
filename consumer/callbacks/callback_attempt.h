#pragma once
// One POST of a callback with libcurl, on a handle the sender adds to its multi handle: the
// body, Content-Type, Feedpipe-Delivery and (with a secret) Feedpipe-Signature; the fetch's
// SSRF guard on every connection (after DNS); no redirect followed; connect, total and
// low-speed limits; the answer's body read up to a cap and dropped. finish() turns libcurl's
// result into delivered (2xx), retry (anything else) or refused (the address rules forbid it).
// Not thread-safe: used by the sender's thread only.
#include <curl/curl.h>

#include <string>

#include "common/callbacks/callback_store.h"
#include "consumer/callbacks/callback_settings.h"
#include "consumer/fetcher/address_policy.h"

namespace feedpipe::callbacks {

enum class AttemptResult { delivered, retry, refused };

struct AttemptOutcome {
  AttemptResult result = AttemptResult::retry;
  long http_status = 0;  // 0 when no answer arrived
  std::string error;     // empty when delivered
};

class CallbackAttempt {
 public:
  // `unix_s` is the signature's t. Throws std::runtime_error when libcurl has no handle to give.
  CallbackAttempt(ClaimedCallback callback, const CallbackSettings& settings, const fetcher::AddressPolicy& policy,
                  int64_t unix_s);
  ~CallbackAttempt();
  CallbackAttempt(const CallbackAttempt&) = delete;
  CallbackAttempt& operator=(const CallbackAttempt&) = delete;

  CURL* handle() const { return easy_; }
  const ClaimedCallback& callback() const { return callback_; }
  // The outcome once the multi handle reports the transfer done with `code`.
  AttemptOutcome finish(CURLcode code) const;

 private:
  static size_t on_body(char* data, size_t size, size_t n, void* user);
  static curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address);

  ClaimedCallback callback_;
  const CallbackSettings& settings_;
  const fetcher::AddressPolicy& policy_;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
  size_t body_bytes_ = 0;
  bool body_capped_ = false;
  std::string refused_;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

}  // namespace feedpipe::callbacks
