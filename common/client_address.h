#pragma once
// Which address a request comes from, for per-client limits. Behind a proxy every request
// arrives from the proxy: when the direct peer is a trusted proxy (--trusted-proxies: addresses or
// CIDR blocks; by default loopback), the client is the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. Otherwise the peer.
#include <optional>
#include <string>
#include <string_view>

#include "common/ip_network.h"

namespace feedpipe {

class TrustedProxies {
 public:
  TrustedProxies() = default;
  // A comma-separated list of IP addresses and CIDR blocks (IPv4 or IPv6). Throws ConfigError
  // naming --trusted-proxies and the item that is neither.
  static TrustedProxies parse(std::string_view list);

  // Requests whose direct peer is `address` come from the stream front, which appends its own
  // peer to X-Forwarded-For: that entry is read as the peer, whatever the list says. (A client
  // at the same address that reaches the front is judged by the list, like any other.)
  void trust_front_hop(std::string_view address);

  bool trusts(std::string_view address) const;
  // The client's address given the direct peer's address and the X-Forwarded-For value (may be
  // empty).
  std::string client_address(std::string_view peer, std::string_view forwarded_for) const;

 private:
  IpNetworks networks_;
  std::optional<IpAddress> front_hop_;
};

}  // namespace feedpipe
