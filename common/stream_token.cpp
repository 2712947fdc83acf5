#include "common/stream_token.h"

#include <cctype>

#include "common/hmac.h"

namespace feedpipe {

std::string stream_token(std::string_view secret, std::string_view batch_id) {
  return to_hex(hmac_sha256(secret, batch_id));
}

bool stream_token_valid(std::string_view secret, std::string_view batch_id, std::string_view token) {
  std::string lower(token);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return constant_time_equal(stream_token(secret, batch_id), lower);
}

}  // namespace feedpipe
