#pragma once
// IP addresses and networks (CIDR blocks) given in settings: `--trusted-proxies`,
// `--allow-networks`. A network is "10.1.0.0/16", "fd00::/8", or a single address ("10.0.0.5"
// is 10.0.0.5/32, "::1" is ::1/128). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are their IPv4
// address, so "127.0.0.1/32" holds ::ffff:127.0.0.1. Values only; no I/O, no locks.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace feedpipe {

struct IpAddress {
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};  // IPv4: the first 4, network order

  // "10.0.0.1", "::1", "[::1]"; nullopt for anything else (names, "127.1", ports).
  static std::optional<IpAddress> parse(std::string_view text);
  // AF_INET / AF_INET6 socket addresses; nullopt for other families and null.
  static std::optional<IpAddress> of(const sockaddr* addr);
  std::string to_string() const;  // canonical text ("::1", never "::0001")
  bool operator==(const IpAddress& o) const { return v6 == o.v6 && bytes == o.bytes; }
};

class IpNetwork {
 public:
  // A block in CIDR notation or a single address. On failure, nullopt and `*error` says why in
  // words a person can act on (e.g. "prefix length 33 is more than 32 for IPv4", "'10.1.2.3/16'
  // has host bits set: did you mean 10.1.0.0/16?").
  static std::optional<IpNetwork> parse(std::string_view text, std::string* error);

  bool contains(const IpAddress& address) const;
  std::string to_string() const;  // "10.1.0.0/16"

 private:
  IpAddress base_;
  int prefix_ = 0;
};

// A comma-separated list of networks, as a setting gives it.
class IpNetworks {
 public:
  IpNetworks() = default;
  // Empty items are skipped. Throws ConfigError naming `setting` and the bad item.
  static IpNetworks parse(std::string_view list, const std::string& setting);

  void add(IpNetwork network) { networks_.push_back(network); }
  bool contains(const IpAddress& address) const;
  bool contains(std::string_view address) const;  // false when `address` is not an IP address
  bool empty() const { return networks_.empty(); }
  std::string to_string() const;  // "10.1.0.0/16,127.0.0.2/32"

 private:
  std::vector<IpNetwork> networks_;
};

}  // namespace feedpipe
