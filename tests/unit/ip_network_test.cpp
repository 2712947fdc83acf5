// IP addresses and CIDR blocks of settings (common/ip_network.h), the trusted proxies built on
// them, and the SSRF guard's exceptions (--allow-networks).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "common/client_address.h"
#include "common/config.h"
#include "common/ip_network.h"
#include "consumer/fetcher/address_policy.h"

namespace feedpipe {
namespace {

IpAddress ip(const std::string& text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

std::string error_of(const std::string& text) {
  std::string error;
  EXPECT_FALSE(IpNetwork::parse(text, &error).has_value()) << text;
  return error;
}

TEST(IpAddress, ParsesBothFamiliesAndCanonicalizes) {
  EXPECT_EQ(ip("10.0.0.1").to_string(), "10.0.0.1");
  EXPECT_EQ(ip(" ::0001 ").to_string(), "::1");
  EXPECT_EQ(ip("[::1]").to_string(), "::1");
  EXPECT_EQ(ip("::ffff:127.0.0.1").to_string(), "127.0.0.1");  // IPv4-mapped is IPv4
  EXPECT_FALSE(ip("::ffff:127.0.0.1").v6);
  for (const char* bad : {"", "localhost", "127.1", "10.0.0.1:80", "1.2.3.4.5", "::g", "[::1"})
    EXPECT_FALSE(IpAddress::parse(bad).has_value()) << bad;
}

TEST(IpNetwork, ContainsByPrefix) {
  std::string error;
  auto n = IpNetwork::parse("10.1.0.0/16", &error);
  ASSERT_TRUE(n) << error;
  EXPECT_TRUE(n->contains(ip("10.1.0.0")));
  EXPECT_TRUE(n->contains(ip("10.1.255.255")));
  EXPECT_FALSE(n->contains(ip("10.2.0.1")));
  EXPECT_FALSE(n->contains(ip("::ffff:10.2.0.1")));
  EXPECT_TRUE(n->contains(ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(n->contains(ip("::a01:203")));  // IPv6, not mapped: another family
  EXPECT_EQ(n->to_string(), "10.1.0.0/16");

  auto odd = IpNetwork::parse("172.16.0.0/12", &error);
  ASSERT_TRUE(odd) << error;
  EXPECT_TRUE(odd->contains(ip("172.31.255.1")));
  EXPECT_FALSE(odd->contains(ip("172.32.0.1")));

  auto v6 = IpNetwork::parse("fd00:1::/64", &error);
  ASSERT_TRUE(v6) << error;
  EXPECT_TRUE(v6->contains(ip("fd00:1::5")));
  EXPECT_FALSE(v6->contains(ip("fd00:2::5")));
  EXPECT_FALSE(v6->contains(ip("10.0.0.1")));

  auto single = IpNetwork::parse("127.0.0.2", &error);
  ASSERT_TRUE(single) << error;
  EXPECT_EQ(single->to_string(), "127.0.0.2/32");
  EXPECT_TRUE(single->contains(ip("127.0.0.2")));
  EXPECT_FALSE(single->contains(ip("127.0.0.1")));

  auto all = IpNetwork::parse("0.0.0.0/0", &error);
  ASSERT_TRUE(all) << error;
  EXPECT_TRUE(all->contains(ip("203.0.113.7")));
  EXPECT_FALSE(all->contains(ip("::1")));
  auto loop6 = IpNetwork::parse("::1/128", &error);
  ASSERT_TRUE(loop6) << error;
  EXPECT_TRUE(loop6->contains(ip("::1")));
}

TEST(IpNetwork, BadInputSaysWhy) {
  EXPECT_NE(error_of("10.1.0.0/33").find("prefix length 33 is more than 32 for IPv4"), std::string::npos);
  EXPECT_NE(error_of("fd00::/129").find("more than 128 for IPv6"), std::string::npos);
  EXPECT_NE(error_of("10.1.0.0/").find("is not a prefix length"), std::string::npos);
  EXPECT_NE(error_of("10.1.0.0/x").find("'x' after '/' is not a prefix length"), std::string::npos);
  EXPECT_NE(error_of("10.1.0.0/-1").find("is not a prefix length"), std::string::npos);
  EXPECT_NE(error_of("intranet.example/16").find("'intranet.example' is not an IP address"), std::string::npos);
  EXPECT_NE(error_of("10.1.2.3/16").find("has host bits set: did you mean 10.1.0.0/16?"), std::string::npos)
      << error_of("10.1.2.3/16");
  EXPECT_NE(error_of("::ffff:10.0.0.0/104").find("IPv4 form"), std::string::npos);
}

TEST(IpNetworks, ParsesAListAndNamesTheSettingOnError) {
  IpNetworks list = IpNetworks::parse("10.1.0.0/16, fd00:1::/64,,127.0.0.2", "allow-networks");
  EXPECT_EQ(list.to_string(), "10.1.0.0/16,fd00:1::/64,127.0.0.2/32");
  EXPECT_TRUE(list.contains("10.1.9.9"));
  EXPECT_TRUE(list.contains("fd00:1::1"));
  EXPECT_TRUE(list.contains("127.0.0.2"));
  EXPECT_FALSE(list.contains("127.0.0.1"));
  EXPECT_FALSE(list.contains("not an address"));
  EXPECT_TRUE(IpNetworks::parse("", "allow-networks").empty());
  try {
    IpNetworks::parse("10.1.0.0/16,10.2.0.0/40", "allow-networks");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("--allow-networks: prefix length 40 is more than 32 for IPv4", 0), 0u) << what;
  }
}

TEST(TrustedProxiesCidr, TrustsBlocksAndTheFrontHop) {
  // compose's nginx sits somewhere in Docker's network: trust the block.
  TrustedProxies proxies = TrustedProxies::parse("172.16.0.0/12,fd00::/8");
  EXPECT_EQ(proxies.client_address("172.18.0.5", "198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(proxies.client_address("fd00::5", "198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(proxies.client_address("::ffff:172.18.0.5", "198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(proxies.client_address("172.32.0.5", "198.51.100.1"), "172.32.0.5");  // outside the block
  // The list does not name loopback: the front's hop is not trusted ...
  EXPECT_EQ(proxies.client_address("127.0.0.1", "198.51.100.1, 172.18.0.5"), "127.0.0.1");
  // ... until it is named as the front's, whatever the list said: client → nginx → front → API.
  proxies.trust_front_hop("127.0.0.1");
  EXPECT_EQ(proxies.client_address("127.0.0.1", "198.51.100.1, 172.18.0.5"), "198.51.100.1");
  // A loopback client of the front is not a proxy by that: its own X-Forwarded-For is ignored.
  EXPECT_EQ(proxies.client_address("127.0.0.1", "198.51.100.1, 127.0.0.1"), "127.0.0.1");
  EXPECT_THROW(proxies.trust_front_hop("front"), ConfigError);
  EXPECT_THROW(TrustedProxies::parse("10.0.0.0/8,nginx"), ConfigError);
  EXPECT_THROW(TrustedProxies::parse("10.0.0.0/33"), ConfigError);
}

sockaddr_in v4(const char* text) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  inet_pton(AF_INET, text, &sin.sin_addr);
  return sin;
}

sockaddr_in6 v6(const char* text) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, text, &sin6.sin6_addr);
  return sin6;
}

const sockaddr* sa(const sockaddr_in& s) { return reinterpret_cast<const sockaddr*>(&s); }
const sockaddr* sa(const sockaddr_in6& s) { return reinterpret_cast<const sockaddr*>(&s); }

TEST(AddressPolicy, AllowsExactlyTheListedNetworks) {
  using fetcher::AddressPolicy;
  AddressPolicy guard;  // default: every non-public address refused
  EXPECT_EQ(guard.refusal(sa(v4("10.1.2.3"))).value_or(""), "refused address 10.1.2.3 (private)");
  EXPECT_FALSE(guard.refusal(sa(v4("203.0.113.7"))).has_value());

  AddressPolicy intranet(false, IpNetworks::parse("10.1.0.0/16,127.0.0.2/32,fd00:1::/64", "allow-networks"));
  EXPECT_FALSE(intranet.refusal(sa(v4("10.1.2.3"))).has_value());
  EXPECT_FALSE(intranet.refusal(sa(v4("127.0.0.2"))).has_value());
  EXPECT_FALSE(intranet.refusal(sa(v6("fd00:1::7"))).has_value());
  EXPECT_FALSE(intranet.refusal(sa(v6("::ffff:10.1.0.9"))).has_value());
  EXPECT_FALSE(intranet.refusal(sa(v4("203.0.113.7"))).has_value());  // public stays allowed
  EXPECT_EQ(intranet.refusal(sa(v4("10.2.0.1"))).value_or(""),
            "refused address 10.2.0.1 (private, not in --allow-networks 10.1.0.0/16,127.0.0.2/32,fd00:1::/64)");
  EXPECT_NE(intranet.refusal(sa(v4("127.0.0.1"))).value_or("").find("(loopback, not in --allow-networks"),
            std::string::npos);
  EXPECT_NE(intranet.refusal(sa(v6("::1"))).value_or("").find("refused address ::1 (loopback"), std::string::npos);
  EXPECT_NE(intranet.refusal(sa(v4("169.254.169.254"))).value_or("").find("link-local"), std::string::npos);

  AddressPolicy tests(true, {});
  EXPECT_FALSE(tests.refusal(sa(v4("127.0.0.1"))).has_value());
  EXPECT_FALSE(tests.refusal(sa(v6("::1"))).has_value());
  EXPECT_TRUE(tests.refusal(nullptr).has_value());
}

}  // namespace
}  // namespace feedpipe
