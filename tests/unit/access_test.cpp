// Access control pieces of common/: HMAC-SHA256 and stream tokens, bearer tokens, the token-bucket
// rate limiter, CORS origin matching, client addresses behind trusted proxies.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/api_tokens.h"
#include "common/client_address.h"
#include "common/config.h"
#include "common/cors.h"
#include "common/hmac.h"
#include "common/rate_limiter.h"
#include "common/stream_token.h"

namespace feedpipe {
namespace {

using namespace std::chrono_literals;

std::string hmac_hex(const std::string& key, const std::string& data) { return to_hex(hmac_sha256(key, data)); }

// RFC 4231, section 4: the HMAC-SHA-256 results of test cases 1–7.
TEST(Hmac, Rfc4231TestVectors) {
  EXPECT_EQ(hmac_hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_hex(std::string(20, '\xaa'), std::string(50, '\xdd')),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  std::string key4;
  for (char c = 1; c <= 25; ++c) key4 += c;
  EXPECT_EQ(hmac_hex(key4, std::string(50, '\xcd')),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  // Test case 5 specifies the output truncated to 128 bits.
  EXPECT_EQ(hmac_hex(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
  EXPECT_EQ(hmac_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(hmac_hex(std::string(131, '\xaa'),
                     "This is a test using a larger than block-size key and a larger than block-size data. "
                     "The key needs to be hashed before being used by the HMAC algorithm."),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(Hmac, Sha256KnownAnswerAndConstantTimeEquality) {
  EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(constant_time_equal("same", "same"));
  EXPECT_FALSE(constant_time_equal("same", "samE"));
  EXPECT_FALSE(constant_time_equal("same", "same-but-longer"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(StreamToken, IsTheHexHmacOfTheBatchIdAndIsCheckedExactly) {
  const std::string token = stream_token("sekrit", "abc");
  EXPECT_EQ(token, "21b2f5e719d13fd119bbc8f81d06bd0bfd3dbbfcb006de53ef4116f196595078");
  EXPECT_TRUE(stream_token_valid("sekrit", "abc", token));
  std::string upper = token;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(stream_token_valid("sekrit", "abc", upper));
  EXPECT_FALSE(stream_token_valid("sekrit", "abd", token));        // another batch
  EXPECT_FALSE(stream_token_valid("other", "abc", token));         // another secret
  EXPECT_FALSE(stream_token_valid("sekrit", "abc", token.substr(0, 63)));
  EXPECT_FALSE(stream_token_valid("sekrit", "abc", ""));
}

TEST(ApiTokens, FileTextSkipsCommentsAndBlankLinesAndTrims) {
  auto tokens = ApiTokens::parse_file_text("# deploy tokens\n\n  alpha-1  \r\n#beta\nbeta.2~+/==\n\t\n", "tokens.txt");
  EXPECT_EQ(tokens, (std::vector<std::string>{"alpha-1", "beta.2~+/=="}));
  EXPECT_TRUE(ApiTokens::parse_file_text("", "empty").empty());
  EXPECT_EQ(ApiTokens::parse_file_text("last-line-without-newline", "f"),
            std::vector<std::string>{"last-line-without-newline"});
}

TEST(ApiTokens, RejectsMalformedTokensWithoutQuotingThem) {
  try {
    ApiTokens::parse_file_text("good\nhas space-secretvalue\n", "tokens.txt");
    FAIL() << "a token with a space was accepted";
  } catch (const ConfigError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("tokens.txt line 2"), std::string::npos) << message;
    EXPECT_EQ(message.find("secretvalue"), std::string::npos) << "the token leaked into: " << message;
  }
  EXPECT_THROW(ApiTokens::parse_list("ok,=leading-equals", "--api-tokens"), ConfigError);
  EXPECT_THROW(ApiTokens::parse_list("a=b", "--api-tokens"), ConfigError);  // '=' only at the end
}

TEST(ApiTokens, LoadMergesListAndFileAndRefusesAnEmptyOrMissingFile) {
  std::string path = ::testing::TempDir() + "feedpipe_tokens_test.txt";
  {
    std::ofstream(path) << "# one token\nfrom-file\n";
  }
  ApiTokens tokens = ApiTokens::load(path, "from-list, second");
  EXPECT_TRUE(tokens.enabled());
  EXPECT_EQ(tokens.size(), 3u);
  EXPECT_TRUE(tokens.accepts("from-file"));
  EXPECT_TRUE(tokens.accepts("second"));
  EXPECT_FALSE(tokens.accepts("from-fil"));
  EXPECT_FALSE(tokens.accepts("from-file "));
  EXPECT_FALSE(tokens.accepts(""));
  {
    std::ofstream(path) << "# nothing but comments\n";
  }
  EXPECT_THROW(ApiTokens::load(path, ""), ConfigError);
  std::remove(path.c_str());
  EXPECT_THROW(ApiTokens::load(path, ""), ConfigError);
  EXPECT_FALSE(ApiTokens::load("", "").enabled());
}

TEST(ApiTokens, BearerHeaderParsing) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer   abc  "), "abc");
  EXPECT_EQ(bearer_token("BEARER abc"), "abc");
  EXPECT_FALSE(bearer_token(""));
  EXPECT_FALSE(bearer_token("Bearer"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
  EXPECT_FALSE(bearer_token("Bearerabc"));
  EXPECT_EQ(token_key("abc"), token_key("abc"));
  EXPECT_NE(token_key("abc"), token_key("abd"));
  EXPECT_EQ(token_key("abc").find("abc"), std::string::npos);
}

TEST(RateLimiter, AllowsABurstOfPerMinuteThenRefillsSteadily) {
  RateLimiter limiter(3, 100);
  auto t0 = RateLimiter::Clock::time_point{} + 1000s;
  EXPECT_TRUE(limiter.acquire("a", t0).allowed);
  EXPECT_TRUE(limiter.acquire("a", t0).allowed);
  EXPECT_TRUE(limiter.acquire("a", t0).allowed);
  auto refused = limiter.acquire("a", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 20);  // one token per 20 s
  // Another key has its own bucket.
  EXPECT_TRUE(limiter.acquire("b", t0).allowed);
  // Part of the way: still refused, with the remaining wait rounded up.
  auto later = limiter.acquire("a", t0 + 15500ms);
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.retry_after_s, 5);
  EXPECT_TRUE(limiter.acquire("a", t0 + 20s).allowed);
  EXPECT_FALSE(limiter.acquire("a", t0 + 20s).allowed);
}

TEST(RateLimiter, RetryAfterIsAtLeastOneSecond) {
  RateLimiter limiter(6000, 10);  // 100 per second
  auto t0 = RateLimiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 6000; ++i) ASSERT_TRUE(limiter.acquire("k", t0).allowed);
  auto refused = limiter.acquire("k", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1);
}

TEST(RateLimiter, ZeroIsOffAndStoresNothing) {
  RateLimiter limiter(0, 10);
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.acquire("k" + std::to_string(i)).allowed);
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST(RateLimiter, ForgetsKeysIdleForAMinuteAndNeverHoldsMoreThanMaxKeys) {
  RateLimiter limiter(2, 3);
  auto t0 = RateLimiter::Clock::time_point{} + 1000s;
  limiter.acquire("a", t0);
  limiter.acquire("b", t0 + 1s);
  EXPECT_EQ(limiter.tracked_keys(), 2u);
  // A minute after their last request both buckets are full again: forgotten.
  limiter.acquire("c", t0 + 61s);
  EXPECT_EQ(limiter.tracked_keys(), 1u);
  // Beyond max_keys the least recently seen key goes, even when not idle.
  limiter.acquire("d", t0 + 62s);
  limiter.acquire("e", t0 + 62s);
  limiter.acquire("c", t0 + 63s);  // c seen again: d is now the oldest
  limiter.acquire("f", t0 + 63s);
  EXPECT_EQ(limiter.tracked_keys(), 3u);
  // d was forgotten, so it starts with a full bucket (remembered, it would have had one token).
  EXPECT_TRUE(limiter.acquire("d", t0 + 63s).allowed);
  EXPECT_TRUE(limiter.acquire("d", t0 + 63s).allowed);
  EXPECT_FALSE(limiter.acquire("d", t0 + 63s).allowed);
}

TEST(RateLimiter, CountsExactlyUnderConcurrentCallers) {
  RateLimiter limiter(1000, 100);
  auto t0 = RateLimiter::Clock::time_point{} + 1000s;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i)
        if (limiter.acquire("shared", t0).allowed) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(Cors, MatchesListedOriginsCaseInsensitivelyAndEchoesThem) {
  CorsPolicy policy = CorsPolicy::parse("https://app.example, http://localhost:3000/");
  EXPECT_TRUE(policy.enabled());
  EXPECT_EQ(policy.allowed("https://app.example"), "https://app.example");
  EXPECT_EQ(policy.allowed("https://APP.example"), "https://APP.example");
  EXPECT_EQ(policy.allowed("https://app.example:443"), "https://app.example:443");  // default port
  EXPECT_EQ(policy.allowed("http://localhost:3000"), "http://localhost:3000");
  EXPECT_FALSE(policy.allowed("http://app.example"));       // another scheme
  EXPECT_FALSE(policy.allowed("https://app.example:8443"));  // another port
  EXPECT_FALSE(policy.allowed("https://evil.app.example"));
  EXPECT_FALSE(policy.allowed("https://app.example.evil"));
  EXPECT_FALSE(policy.allowed("null"));
  EXPECT_FALSE(policy.allowed(""));
}

TEST(Cors, StarAdmitsAnyOriginButNeverHeaderBreakingText) {
  CorsPolicy any = CorsPolicy::parse("*");
  EXPECT_EQ(any.allowed("https://anything.example"), "https://anything.example");
  EXPECT_FALSE(any.allowed("https://x.example\r\nSet-Cookie: a=b"));
  EXPECT_FALSE(CorsPolicy::parse("").enabled());
  EXPECT_FALSE(CorsPolicy().allowed("https://app.example"));
  EXPECT_THROW(CorsPolicy::parse("app.example"), ConfigError);
  EXPECT_THROW(CorsPolicy::parse("https://app.example/path"), ConfigError);
}

TEST(Cors, PreflightHeadersNameTheRequestHeadersTheApiUses) {
  std::string lines = CorsPolicy::as_lines(CorsPolicy::preflight_headers("https://app.example"));
  EXPECT_NE(lines.find("Access-Control-Allow-Origin: https://app.example\r\n"), std::string::npos);
  EXPECT_NE(lines.find("Vary: Origin\r\n"), std::string::npos);
  for (const char* h : {"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"})
    EXPECT_NE(lines.find(h), std::string::npos) << h;
}

TEST(ClientAddress, TrustsForwardedForOnlyFromTrustedProxies) {
  TrustedProxies proxies = TrustedProxies::parse("127.0.0.1, ::1, 10.0.0.5");
  EXPECT_EQ(proxies.client_address("203.0.113.9", "198.51.100.1"), "203.0.113.9");  // not a proxy
  EXPECT_EQ(proxies.client_address("127.0.0.1", ""), "127.0.0.1");
  EXPECT_EQ(proxies.client_address("127.0.0.1", "198.51.100.1"), "198.51.100.1");
  // nginx (10.0.0.5) in front of the stream server's front (loopback): skip both hops.
  EXPECT_EQ(proxies.client_address("127.0.0.1", "198.51.100.1, 10.0.0.5"), "198.51.100.1");
  // A client's own forged entries stay left of the first untrusted hop.
  EXPECT_EQ(proxies.client_address("127.0.0.1", "1.2.3.4, 198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(proxies.client_address("::ffff:127.0.0.1", "198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(proxies.client_address("127.0.0.1", "not-an-ip"), "127.0.0.1");
  EXPECT_EQ(TrustedProxies().client_address("127.0.0.1", "198.51.100.1"), "127.0.0.1");
  EXPECT_THROW(TrustedProxies::parse("localhost"), ConfigError);
}

}  // namespace
}  // namespace feedpipe
