#pragma once
// Signed stream tokens (--stream-token-secret): a batch's event stream may require
// ?token=<hex HMAC-SHA256(secret, batch_id)>. The producer hands the token out with the batch
// (POST /v1/batches answers stream_token and an events_url that carries it); the stream server
// and the stream routes check it. Stateless: any replica with the secret can check any token.
#include <string>
#include <string_view>

namespace feedpipe {

std::string stream_token(std::string_view secret, std::string_view batch_id);
// Constant-time check of `token` (as sent: lowercase or uppercase hex).
bool stream_token_valid(std::string_view secret, std::string_view batch_id, std::string_view token);

}  // namespace feedpipe
