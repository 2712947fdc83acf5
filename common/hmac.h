#pragma once
// SHA-256 and HMAC-SHA256 (OpenSSL's libcrypto, already a dependency through cpp-httplib's TLS
// support), hex encoding, and a comparison whose time does not depend on where inputs differ.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace feedpipe {

using Digest = std::array<uint8_t, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view message);
std::string to_hex(const Digest& digest);  // lowercase, 64 characters

// True when a == b, compared through their SHA-256 digests: the time taken does not depend on
// where the inputs differ, nor does a length mismatch exit early.
bool constant_time_equal(std::string_view a, std::string_view b);
bool constant_time_equal(const Digest& a, const Digest& b);

}  // namespace feedpipe
