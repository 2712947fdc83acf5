#include "common/callbacks/callback_signature.h"

#include "common/hmac.h"

namespace feedpipe::callbacks {

std::string signature_header(std::string_view secret, int64_t unix_s, std::string_view body) {
  const std::string t = std::to_string(unix_s);
  std::string signed_text;
  signed_text.reserve(t.size() + 1 + body.size());
  signed_text.append(t).append(".").append(body);
  return "t=" + t + ",v1=" + to_hex(hmac_sha256(secret, signed_text));
}

}  // namespace feedpipe::callbacks
