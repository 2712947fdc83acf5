#pragma once
// SSRF guard: which peer addresses outbound requests (feeds, and callbacks) may connect to.
// AddressPolicy is the one place that decides; it is checked for every connection libcurl opens
// (each redirect hop, each address tried), after DNS resolution.
#include <optional>
#include <string>

#include "common/ip_network.h"

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

// The guard with the operator's exceptions: public addresses are allowed; the others are refused
// unless every private block is allowed (--allow-private-networks, for tests) or the address lies
// in one of the allowed networks (--allow-networks, e.g. an intranet's feed servers; loopback only
// when a loopback block is listed). Immutable, so safe to share between threads.
class AddressPolicy {
 public:
  AddressPolicy() = default;  // the guard on, no exceptions
  AddressPolicy(bool allow_private_networks, IpNetworks allowed_networks);

  // nullopt when a connection to `addr` is allowed; otherwise the reason, ready for a job's
  // error: "refused address 127.0.0.1 (loopback)", with ", not in --allow-networks" when a list
  // is configured.
  std::optional<std::string> refusal(const sockaddr* addr) const;

 private:
  bool allow_private_networks_ = false;
  IpNetworks allowed_networks_;
};

}  // namespace feedpipe::fetcher
