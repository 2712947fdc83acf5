#include "common/client_address.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>
#include <optional>

#include "common/config.h"

namespace feedpipe {
namespace {

// The canonical text of an IP address (so that "::0001" and "::1" compare equal); IPv4-mapped
// IPv6 addresses become IPv4. nullopt when `text` is not an address.
std::optional<std::string> canonical_ip(std::string_view text) {
  text = trim_space(text);
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::string s(text);
  char buf[INET6_ADDRSTRLEN] = {0};
  in_addr v4{};
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) return std::string(::inet_ntop(AF_INET, &v4, buf, sizeof buf));
  in6_addr v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      std::memcpy(&v4, &v6.s6_addr[12], 4);
      return std::string(::inet_ntop(AF_INET, &v4, buf, sizeof buf));
    }
    return std::string(::inet_ntop(AF_INET6, &v6, buf, sizeof buf));
  }
  return std::nullopt;
}

}  // namespace

TrustedProxies TrustedProxies::parse(std::string_view list) {
  TrustedProxies t;
  for (std::string_view item : split_comma_list(list)) {
    if (item.empty()) continue;
    auto ip = canonical_ip(item);
    if (!ip) throw ConfigError("--trusted-proxies: '" + std::string(item) + "' is not an IP address");
    t.addresses_.push_back(*ip);
  }
  return t;
}

bool TrustedProxies::trusts(std::string_view address) const {
  auto ip = canonical_ip(address);
  if (!ip) return false;
  for (const auto& a : addresses_)
    if (a == *ip) return true;
  return false;
}

std::string TrustedProxies::client_address(std::string_view peer, std::string_view forwarded_for) const {
  auto peer_ip = canonical_ip(peer);
  std::string client = peer_ip ? *peer_ip : std::string(trim_space(peer));
  if (!trusts(client)) return client;
  // Right to left: each hop appended the address it received the request from.
  while (!forwarded_for.empty()) {
    size_t comma = forwarded_for.rfind(',');
    std::string_view item = trim_space(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    if (item.empty()) continue;
    auto ip = canonical_ip(item);
    if (!ip) return client;  // garbage: stop at the last hop we could read
    client = *ip;
    if (!trusts(client)) return client;
  }
  return client;
}

}  // namespace feedpipe
