#include "consumer/callbacks/callback_attempt.h"

#include <sys/socket.h>

#include <stdexcept>

#include "common/callbacks/callback_signature.h"

namespace feedpipe::callbacks {

CallbackAttempt::CallbackAttempt(ClaimedCallback callback, const CallbackSettings& settings,
                                 const fetcher::AddressPolicy& policy, int64_t unix_s)
    : callback_(std::move(callback)), settings_(settings), policy_(policy) {
  easy_ = curl_easy_init();
  if (easy_ == nullptr) throw std::runtime_error("curl_easy_init failed");
  headers_ = curl_slist_append(headers_, "Content-Type: application/json");
  headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip
  headers_ = curl_slist_append(headers_, ("Feedpipe-Delivery: " + callback_.delivery_id).c_str());
  if (!settings.secret.empty())
    headers_ = curl_slist_append(
        headers_, ("Feedpipe-Signature: " + signature_header(settings.secret, unix_s, callback_.body)).c_str());
  curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy_, CURLOPT_URL, callback_.url.c_str());
  curl_easy_setopt(easy_, CURLOPT_PRIVATE, this);
  curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, errbuf_);
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(callback_.body.size()));
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, callback_.body.c_str());  // callback_ outlives the transfer
  curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);  // a 3xx is an answer that is not 2xx
  // A proxy from the environment would resolve and connect on our behalf, past the SSRF guard.
  curl_easy_setopt(easy_, CURLOPT_PROXY, "");
  curl_easy_setopt(easy_, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy_, CURLOPT_USERAGENT, settings.user_agent.c_str());
  curl_easy_setopt(easy_, CURLOPT_OPENSOCKETFUNCTION, &CallbackAttempt::on_open_socket);
  curl_easy_setopt(easy_, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &CallbackAttempt::on_body);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
  if (settings.connect_timeout_ms > 0) curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, settings.connect_timeout_ms);
  if (settings.timeout_ms > 0) curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, settings.timeout_ms);
  if (settings.low_speed_bytes_per_s > 0 && settings.low_speed_window_s > 0) {
    curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, settings.low_speed_bytes_per_s);
    curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME, settings.low_speed_window_s);
  }
}

CallbackAttempt::~CallbackAttempt() {
  if (easy_) curl_easy_cleanup(easy_);
  curl_slist_free_all(headers_);
}

size_t CallbackAttempt::on_body(char*, size_t size, size_t n, void* user) {
  auto* self = static_cast<CallbackAttempt*>(user);
  self->body_bytes_ += size * n;
  if (self->body_bytes_ > self->settings_.max_response_bytes) {
    self->body_capped_ = true;
    return 0;  // ends the transfer (CURLE_WRITE_ERROR): the status is known, the rest is not read
  }
  return size * n;  // read and dropped
}

curl_socket_t CallbackAttempt::on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* self = static_cast<CallbackAttempt*>(user);
  if (purpose == CURLSOCKTYPE_IPCXN) {
    try {
      if (auto refusal = self->policy_.refusal(&address->addr)) {
        self->refused_ = std::move(*refusal);
        return CURL_SOCKET_BAD;
      }
    } catch (...) {
      return CURL_SOCKET_BAD;
    }
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

AttemptOutcome CallbackAttempt::finish(CURLcode code) const {
  AttemptOutcome out;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &out.http_status);
  if (!refused_.empty() && out.http_status == 0) {
    out.result = AttemptResult::refused;
    out.error = refused_;
    return out;
  }
  const bool answered_2xx = out.http_status >= 200 && out.http_status < 300;
  // A 2xx whose body went past the cap was still accepted: the body is never read anyway.
  if (answered_2xx && (code == CURLE_OK || (code == CURLE_WRITE_ERROR && body_capped_))) {
    out.result = AttemptResult::delivered;
    return out;
  }
  out.result = AttemptResult::retry;
  if (out.http_status != 0 && (code == CURLE_OK || body_capped_)) {
    out.error = "HTTP " + std::to_string(out.http_status);
    if (out.http_status >= 300 && out.http_status < 400) out.error += " (redirects are not followed)";
    return out;
  }
  std::string detail = errbuf_[0] != '\0' ? errbuf_ : curl_easy_strerror(code);
  if (code == CURLE_OPERATION_TIMEDOUT)
    out.error = "timed out: " + detail;
  else
    out.error = detail;
  if (out.http_status != 0) out.error = "HTTP " + std::to_string(out.http_status) + ", then " + out.error;
  return out;
}

}  // namespace feedpipe::callbacks
