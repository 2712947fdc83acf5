#pragma once
// Wall-clock helpers: Unix milliseconds and RFC 3339 UTC strings.
#include <cstdint>
#include <string>

namespace feedpipe {

int64_t now_ms();
std::string rfc3339_utc(int64_t unix_ms);  // "2026-11-29T05:35:15Z"
inline std::string now_rfc3339() { return rfc3339_utc(now_ms()); }

}  // namespace feedpipe
