#pragma once
// Which address a request comes from, for per-client limits. Behind a proxy every request
// arrives from the proxy: when the direct peer is a trusted proxy (--trusted-proxies; by default
// loopback, which is how the stream server's front forwards API requests), the client is the
// right-most X-Forwarded-For entry that is not itself a trusted proxy. Otherwise the peer.
#include <string>
#include <string_view>
#include <vector>

namespace feedpipe {

class TrustedProxies {
 public:
  TrustedProxies() = default;
  // A comma-separated list of IP addresses (exact, IPv4 or IPv6). Throws ConfigError for an item
  // that is not an address.
  static TrustedProxies parse(std::string_view list);

  bool trusts(std::string_view address) const;
  // The client's address given the direct peer's address and the X-Forwarded-For value (may be
  // empty).
  std::string client_address(std::string_view peer, std::string_view forwarded_for) const;

 private:
  std::vector<std::string> addresses_;  // canonical text form (inet_ntop)
};

}  // namespace feedpipe
