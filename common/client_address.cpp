#include "common/client_address.h"

#include "common/config.h"

namespace feedpipe {

TrustedProxies TrustedProxies::parse(std::string_view list) {
  TrustedProxies t;
  t.networks_ = IpNetworks::parse(list, "trusted-proxies");
  return t;
}

void TrustedProxies::trust_front_hop(std::string_view address) {
  front_hop_ = IpAddress::parse(address);
  if (!front_hop_) throw ConfigError("the front's hop: '" + std::string(address) + "' is not an IP address");
}

bool TrustedProxies::trusts(std::string_view address) const { return networks_.contains(address); }

std::string TrustedProxies::client_address(std::string_view peer, std::string_view forwarded_for) const {
  auto peer_ip = IpAddress::parse(peer);
  std::string client = peer_ip ? peer_ip->to_string() : std::string(trim_space(peer));
  const bool via_front = peer_ip && front_hop_ && *peer_ip == *front_hop_;
  if (!peer_ip || (!via_front && !networks_.contains(*peer_ip))) return client;
  // Right to left: each hop appended the address it received the request from.
  while (!forwarded_for.empty()) {
    size_t comma = forwarded_for.rfind(',');
    std::string_view item = trim_space(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    if (item.empty()) continue;
    auto ip = IpAddress::parse(item);
    if (!ip) return client;  // garbage: stop at the last hop we could read
    client = ip->to_string();
    if (!networks_.contains(*ip)) return client;
  }
  return client;
}

}  // namespace feedpipe
