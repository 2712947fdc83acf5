#include "common/ip_network.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "common/config.h"

namespace feedpipe {
namespace {

bool is_v4_mapped(const unsigned char* b) {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  return std::memcmp(b, prefix, 12) == 0;
}

IpAddress from_v6(const unsigned char* b) {
  IpAddress a;
  if (is_v4_mapped(b)) {
    std::memcpy(a.bytes.data(), b + 12, 4);
    return a;
  }
  a.v6 = true;
  std::memcpy(a.bytes.data(), b, 16);
  return a;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  text = trim_space(text);
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  unsigned char buf[16] = {};
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) {
    IpAddress a;
    std::memcpy(a.bytes.data(), buf, 4);
    return a;
  }
  if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) return from_v6(buf);
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::of(const sockaddr* addr) {
  if (addr == nullptr) return std::nullopt;
  if (addr->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    IpAddress a;
    std::memcpy(a.bytes.data(), &sin.sin_addr, 4);
    return a;
  }
  if (addr->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, addr, sizeof sin6);
    return from_v6(sin6.sin6_addr.s6_addr);
  }
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

std::optional<IpNetwork> IpNetwork::parse(std::string_view text, std::string* error) {
  text = trim_space(text);
  auto fail = [error](std::string why) -> std::optional<IpNetwork> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  size_t slash = text.find('/');
  std::string_view address_text = text.substr(0, slash);
  auto address = IpAddress::parse(address_text);
  if (!address) return fail("'" + std::string(address_text) + "' is not an IP address (IPv4 or IPv6; host names are not allowed)");
  // An IPv4-mapped address with a prefix would be ambiguous: ask for the IPv4 form.
  if (slash != std::string_view::npos && !address->v6 && address_text.find(':') != std::string_view::npos)
    return fail("write the IPv4 block of an IPv4-mapped address in IPv4 form (" + address->to_string() + "/…)");
  const int max_prefix = address->v6 ? 128 : 32;
  IpNetwork n;
  n.base_ = *address;
  n.prefix_ = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view length = text.substr(slash + 1);
    if (!all_digits(length) || length.size() > 3)
      return fail("'" + std::string(length) + "' after '/' is not a prefix length (0 to " + std::to_string(max_prefix) + ")");
    n.prefix_ = std::stoi(std::string(length));
    if (n.prefix_ > max_prefix)
      return fail("prefix length " + std::to_string(n.prefix_) + " is more than " + std::to_string(max_prefix) +
                  " for " + (address->v6 ? "IPv6" : "IPv4"));
  }
  // Host bits set ("10.1.2.3/16") usually means a typo: say which block was meant.
  IpNetwork masked = n;
  for (int i = 0; i < 16; ++i) {
    int bits = n.prefix_ - 8 * i;
    unsigned char mask = bits >= 8 ? 0xFF : bits <= 0 ? 0 : static_cast<unsigned char>(0xFF << (8 - bits));
    masked.base_.bytes[i] = static_cast<unsigned char>(n.base_.bytes[i] & mask);
  }
  if (!(masked.base_ == n.base_))
    return fail("'" + std::string(text) + "' has host bits set: did you mean " + masked.to_string() + "?");
  return n;
}

bool IpNetwork::contains(const IpAddress& address) const {
  if (address.v6 != base_.v6) return false;
  int bits = prefix_;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    unsigned char mask = bits >= 8 ? 0xFF : static_cast<unsigned char>(0xFF << (8 - bits));
    if ((address.bytes[i] & mask) != base_.bytes[i]) return false;
  }
  return true;
}

std::string IpNetwork::to_string() const { return base_.to_string() + "/" + std::to_string(prefix_); }

IpNetworks IpNetworks::parse(std::string_view list, const std::string& setting) {
  IpNetworks out;
  for (std::string_view item : split_comma_list(list)) {
    if (item.empty()) continue;
    std::string error;
    auto network = IpNetwork::parse(item, &error);
    if (!network)
      throw ConfigError("--" + setting + ": " + error + " (expected addresses or CIDR blocks such as 10.1.0.0/16 or fd00::/8, comma-separated)");
    out.networks_.push_back(*network);
  }
  return out;
}

bool IpNetworks::contains(const IpAddress& address) const {
  for (const auto& n : networks_)
    if (n.contains(address)) return true;
  return false;
}

bool IpNetworks::contains(std::string_view address) const {
  auto a = IpAddress::parse(address);
  return a && contains(*a);
}

std::string IpNetworks::to_string() const {
  std::string out;
  for (const auto& n : networks_) out += (out.empty() ? "" : ",") + n.to_string();
  return out;
}

}  // namespace feedpipe
