#pragma once
// The Feedpipe-Signature header of a callback (DESIGN.md, Callbacks): `t=UNIX,v1=HEX` where HEX
// is the lowercase hex HMAC-SHA256 of `t` + "." + body under the shared secret. A receiver
// recomputes it with the secret alone, compares in constant time and rejects old `t` values.
#include <cstdint>
#include <string>
#include <string_view>

namespace feedpipe::callbacks {

// "t=<unix_s>,v1=<hex>".
std::string signature_header(std::string_view secret, int64_t unix_s, std::string_view body);

}  // namespace feedpipe::callbacks
