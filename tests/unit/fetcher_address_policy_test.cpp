// SSRF guard: address literals are only parsed (inet_pton), never connected to.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <optional>
#include <string>

#include "consumer/fetcher/address_policy.h"

namespace {

using feedpipe::fetcher::address_to_string;
using feedpipe::fetcher::refused_address_reason;

// Parses an IPv4 or IPv6 literal into a sockaddr_storage.
sockaddr_storage parse(const std::string& ip) {
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  if (ip.find(':') != std::string::npos) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr), 1) << ip;
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, ip.c_str(), &sin->sin_addr), 1) << ip;
  }
  return ss;
}

std::optional<std::string> reason(const std::string& ip) {
  sockaddr_storage ss = parse(ip);
  return refused_address_reason(reinterpret_cast<const sockaddr*>(&ss));
}

TEST(AddressPolicyTest, RefusesLoopback) {
  EXPECT_EQ(reason("127.0.0.1"), "loopback");
  EXPECT_EQ(reason("127.255.255.254"), "loopback");
  EXPECT_EQ(reason("::1"), "loopback");
}

TEST(AddressPolicyTest, RefusesUnspecifiedAndThisNetwork) {
  EXPECT_EQ(reason("0.0.0.0"), "unspecified");
  EXPECT_EQ(reason("::"), "unspecified");
  EXPECT_EQ(reason("0.1.2.3"), "this network");
}

TEST(AddressPolicyTest, RefusesPrivateRanges) {
  for (const char* ip : {"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.0.1",
                         "192.168.255.255"})
    EXPECT_EQ(reason(ip), "private") << ip;
  EXPECT_EQ(reason("fc00::1"), "unique-local");
  EXPECT_EQ(reason("fd12:3456:789a::1"), "unique-local");
}

TEST(AddressPolicyTest, RefusesLinkLocalAndMetadata) {
  EXPECT_EQ(reason("169.254.169.254"), "link-local");
  EXPECT_EQ(reason("169.254.0.1"), "link-local");
  EXPECT_EQ(reason("fe80::1"), "link-local");
  EXPECT_EQ(reason("febf:ffff::1"), "link-local");
  EXPECT_EQ(reason("fd00:ec2::254"), "unique-local");  // AWS IPv6 metadata endpoint
}

TEST(AddressPolicyTest, RefusesCgnatMulticastBroadcast) {
  EXPECT_EQ(reason("100.64.0.1"), "carrier-grade NAT");
  EXPECT_EQ(reason("100.127.255.254"), "carrier-grade NAT");
  EXPECT_EQ(reason("224.0.0.1"), "multicast");
  EXPECT_EQ(reason("239.255.255.250"), "multicast");
  EXPECT_EQ(reason("ff02::1"), "multicast");
  EXPECT_EQ(reason("255.255.255.255"), "broadcast");
  EXPECT_EQ(reason("240.0.0.1"), "reserved");
}

TEST(AddressPolicyTest, JudgesIpv4EmbeddedInIpv6) {
  EXPECT_EQ(reason("::ffff:127.0.0.1"), "loopback");
  EXPECT_EQ(reason("::ffff:10.1.2.3"), "private");
  EXPECT_EQ(reason("::ffff:169.254.169.254"), "link-local");
  EXPECT_EQ(reason("::ffff:0.0.0.0"), "unspecified");
  EXPECT_EQ(reason("::127.0.0.1"), "loopback");          // IPv4-compatible (deprecated)
  EXPECT_EQ(reason("64:ff9b::192.168.1.1"), "private");  // NAT64
  EXPECT_EQ(reason("::ffff:93.184.216.34"), std::nullopt);
  EXPECT_EQ(reason("64:ff9b::8.8.8.8"), std::nullopt);
}

TEST(AddressPolicyTest, AllowsPublicAddresses) {
  for (const char* ip : {"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.15.255.255", "172.32.0.0", "100.63.255.255",
                         "100.128.0.0", "169.253.255.255", "11.0.0.1", "192.169.0.1", "223.255.255.255",
                         "2606:4700:4700::1111", "2001:4860:4860::8888", "fbff::1", "fe7f::1"})
    EXPECT_EQ(reason(ip), std::nullopt) << ip;
}

TEST(AddressPolicyTest, RefusesUnknownFamilyAndNull) {
  sockaddr sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNIX;
  EXPECT_TRUE(refused_address_reason(&sa).has_value());
  EXPECT_TRUE(refused_address_reason(nullptr).has_value());
}

TEST(AddressPolicyTest, FormatsAddresses) {
  sockaddr_storage a = parse("169.254.169.254");
  EXPECT_EQ(address_to_string(reinterpret_cast<const sockaddr*>(&a)), "169.254.169.254");
  sockaddr_storage b = parse("::ffff:127.0.0.1");
  EXPECT_EQ(address_to_string(reinterpret_cast<const sockaddr*>(&b)), "::ffff:127.0.0.1");
  sockaddr_storage c = parse("::1");
  EXPECT_EQ(address_to_string(reinterpret_cast<const sockaddr*>(&c)), "::1");
}

}  // namespace
