#pragma once
// SSRF guard: which peer addresses the fetcher may connect to.
#include <optional>
#include <string>

struct sockaddr;

namespace feedpipe::fetcher {

// nullopt when a connection to `addr` is allowed; otherwise a short reason such as "loopback",
// "private", "link-local", "unique-local", "carrier-grade NAT", "multicast", "broadcast",
// "unspecified", "this network", "reserved", "site-local". IPv4-mapped, IPv4-compatible and
// NAT64 (64:ff9b::/96) IPv6 addresses are judged by the IPv4 address they carry.
// Families other than AF_INET/AF_INET6 (and a null pointer) are refused ("unsupported family").
std::optional<std::string> refused_address_reason(const sockaddr* addr);

// The numeric form of an AF_INET/AF_INET6 address ("127.0.0.1", "::1"); "?" for anything else.
std::string address_to_string(const sockaddr* addr);

}  // namespace feedpipe::fetcher
