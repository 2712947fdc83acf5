#include "consumer/fetcher/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace feedpipe::fetcher {
namespace {

// `a` in host byte order.
std::optional<std::string> ipv4_reason(uint32_t a) {
  auto in = [a](uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (a == 0) return "unspecified";
  if (a == 0xFFFFFFFFu) return "broadcast";
  if (in(0x00000000u, 8)) return "this network";                   // 0.0.0.0/8
  if (in(0x7F000000u, 8)) return "loopback";                       // 127.0.0.0/8
  if (in(0x0A000000u, 8)) return "private";                        // 10.0.0.0/8
  if (in(0xAC100000u, 12)) return "private";                       // 172.16.0.0/12
  if (in(0xC0A80000u, 16)) return "private";                       // 192.168.0.0/16
  if (in(0xA9FE0000u, 16)) return "link-local";                    // 169.254.0.0/16 (metadata)
  if (in(0x64400000u, 10)) return "carrier-grade NAT";             // 100.64.0.0/10
  if (in(0xE0000000u, 4)) return "multicast";                      // 224.0.0.0/4
  if (in(0xF0000000u, 4)) return "reserved";                       // 240.0.0.0/4
  return std::nullopt;
}

uint32_t embedded_ipv4(const unsigned char* b) {
  return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | uint32_t{b[15]};
}

std::optional<std::string> ipv6_reason(const unsigned char* b) {
  static const unsigned char zero[16] = {};
  if (std::memcmp(b, zero, 16) == 0) return "unspecified";
  if (std::memcmp(b, zero, 15) == 0 && b[15] == 1) return "loopback";
  // ::ffff:a.b.c.d (IPv4-mapped)
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::memcmp(b, mapped, 12) == 0) return ipv4_reason(embedded_ipv4(b));
  // ::a.b.c.d (deprecated IPv4-compatible)
  if (std::memcmp(b, zero, 12) == 0) return ipv4_reason(embedded_ipv4(b));
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix): translated to the IPv4 address it carries.
  static const unsigned char nat64[12] = {0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, nat64, 12) == 0) return ipv4_reason(embedded_ipv4(b));
  if ((b[0] & 0xFE) == 0xFC) return "unique-local";                 // fc00::/7
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return "link-local";   // fe80::/10
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return "site-local";   // fec0::/10 (deprecated)
  if (b[0] == 0xFF) return "multicast";                             // ff00::/8
  return std::nullopt;
}

}  // namespace

std::optional<std::string> refused_address_reason(const sockaddr* addr) {
  if (addr == nullptr) return "unsupported family";
  if (addr->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    return ipv4_reason(ntohl(sin.sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, addr, sizeof sin6);
    return ipv6_reason(sin6.sin6_addr.s6_addr);
  }
  return "unsupported family";
}

AddressPolicy::AddressPolicy(bool allow_private_networks, IpNetworks allowed_networks)
    : allow_private_networks_(allow_private_networks), allowed_networks_(std::move(allowed_networks)) {}

std::optional<std::string> AddressPolicy::refusal(const sockaddr* addr) const {
  auto reason = refused_address_reason(addr);
  if (!reason) return std::nullopt;
  auto ip = IpAddress::of(addr);
  if (ip && allow_private_networks_) return std::nullopt;
  if (ip && allowed_networks_.contains(*ip)) return std::nullopt;
  std::string text = "refused address " + address_to_string(addr) + " (" + *reason;
  if (!allowed_networks_.empty()) text += ", not in --allow-networks " + allowed_networks_.to_string();
  return text + ")";
}

std::string address_to_string(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr != nullptr && addr->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    if (inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf)) return buf;
  } else if (addr != nullptr && addr->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, addr, sizeof sin6);
    if (inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf)) return buf;
  }
  return "?";
}

}  // namespace feedpipe::fetcher
