// Hostile input end to end: `feedpipe standalone` against feed servers that misbehave on purpose,
// URLs that are not fetchable, and the SSRF guard with every spelling of loopback. Fetch limits
// are set low with flags so that each case ends in seconds; every case must fail its job alone,
// with a reason that names it, and leave the service serving.
#include <gtest/gtest.h>

#include <random>

#include "tests/support/harness.h"
#include "tests/support/raw_server.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr size_t kBodyCap = 1 << 20;  // --fetch-max-body-bytes

std::string gzip(const std::string& data) {
  httplib::detail::gzip_compressor compressor;
  std::string out;
  compressor.compress(data.data(), data.size(), true, [&](const char* p, size_t n) {
    out.append(p, n);
    return true;
  });
  return out;
}

std::string ok_head(const std::string& type, const std::string& extra = "") {
  return response_head(200, "OK", "Content-Type: " + type + "\r\n" + extra);
}

std::string with_length(const std::string& type, const std::string& body) {
  return ok_head(type, "Content-Length: " + std::to_string(body.size()) + "\r\n") + body;
}

// Serves every misbehaviour the batch below asks for.
void install_hostile_routes(RawServer& server) {
  server.on("/endless", [](const std::string&, RawServer::Connection& c) {
    c.send(ok_head("application/rss+xml") + "<rss version=\"2.0\"><channel><title>endless</title>");
    const std::string item(16384, ' ');
    while (c.send(item)) {}
  });
  static const std::string bomb = gzip(std::string(64u << 20, '\0'));  // 64 MiB of zeros, ~64 KiB sent
  server.on("/gzip-bomb", [](const std::string&, RawServer::Connection& c) {
    c.send(ok_head("application/rss+xml", "Content-Encoding: gzip\r\nContent-Length: " +
                                              std::to_string(bomb.size()) + "\r\n") + bomb);
  });
  server.on("/byte-a-second", [](const std::string&, RawServer::Connection& c) {
    if (!c.send(ok_head("application/rss+xml", "Content-Length: 100000\r\n"))) return;
    for (int i = 0; i < 60 && c.send("<"); ++i)
      for (int t = 0; t < 10 && !c.stopping(); ++t) std::this_thread::sleep_for(100ms);
  });
  server.on("/silent", [](const std::string&, RawServer::Connection& c) {
    // Takes the request and answers nothing, as a server whose queue overflowed.
    while (!c.stopping()) std::this_thread::sleep_for(50ms);
  });
  server.on("/trickle", [](const std::string&, RawServer::Connection& c) {
    // The head and the start of the body at once, then a byte every half second.
    if (!c.send(ok_head("application/rss+xml", "Content-Length: 100000\r\n") +
                "<rss version=\"2.0\"><channel><title>trickle</title>" + std::string(4000, ' ')))
      return;
    for (int i = 0; i < 120 && c.send(" "); ++i)
      for (int t = 0; t < 5 && !c.stopping(); ++t) std::this_thread::sleep_for(100ms);
  });
  server.on("/redirect-loop", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(302, "Found", "Location: /redirect-loop\r\nContent-Length: 0\r\n"));
  });
  server.on("/html", [](const std::string&, RawServer::Connection& c) {
    c.send(with_length("text/html", "<!DOCTYPE html><html><head><title>Welcome</title></head>"
                                    "<body><p>Nothing to see<br>here</body></html>"));
  });
  server.on("/random", [](const std::string&, RawServer::Connection& c) {
    std::mt19937 rng(7);
    std::string bytes(4096, '\0');
    for (char& b : bytes) b = static_cast<char>(rng());
    bytes[0] = '\x01';
    c.send(with_length("application/octet-stream", bytes));
  });
  server.on("/empty", [](const std::string&, RawServer::Connection& c) {
    c.send(with_length("application/rss+xml", ""));
  });
  server.on("/500", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(500, "Internal Server Error", "Content-Length: 4\r\n") + "boom");
  });
  server.on("/429-late", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(429, "Too Many Requests", "Retry-After: 3600\r\nContent-Length: 0\r\n"));
  });
  server.on("/429", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(429, "Too Many Requests", "Content-Length: 0\r\n"));
  });
  server.on("/billion-laughs", [](const std::string&, RawServer::Connection& c) {
    std::string doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n";
    doc += "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n";
    for (int i = 2; i <= 9; ++i) {
      std::string prev = "&lol" + std::to_string(i - 1) + ";";
      doc += "<!ENTITY lol" + std::to_string(i) + " \"";
      for (int k = 0; k < 10; ++k) doc += prev;
      doc += "\">\n";
    }
    doc += "]>\n<rss version=\"2.0\"><channel><title>&lol9;</title></channel></rss>";
    c.send(with_length("application/rss+xml", doc));
  });
  server.on("/deep", [](const std::string&, RawServer::Connection& c) {
    std::string doc = "<rss version=\"2.0\"><channel>";
    for (int i = 0; i < 100000; ++i) doc += "<x>";
    for (int i = 0; i < 100000; ++i) doc += "</x>";
    doc += "</channel></rss>";
    c.send(with_length("application/rss+xml", doc));
  });
  server.on("/liar", [](const std::string&, RawServer::Connection& c) {
    c.send(ok_head("application/rss+xml", "Content-Length: 2147483648\r\n") + "<rss version=\"2.0\">");
  });
}

std::string error_of(const nlohmann::json& job) {
  return job["error"].is_string() ? job["error"].get<std::string>() : "";
}

class HostileTest : public ::testing::Test {
 protected:
  void start(bool allow_private_networks, const std::vector<std::string>& extra = {}) {
    port_ = free_port();
    std::vector<std::string> args{"--consumers", "1",
                                  "--fetch-connect-timeout-ms", "2000", "--fetch-timeout-ms", "10000",
                                  "--fetch-low-speed-bytes", "1024", "--fetch-low-speed-seconds", "2",
                                  "--fetch-max-body-bytes", std::to_string(kBodyCap),
                                  "--fetch-max-redirects", "3", "--fetch-attempts", "2",
                                  "--fetch-retry-delay-ms", "100", "--job-deadline-ms", "20000"};
    if (allow_private_networks) args.push_back("--allow-private-networks");
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = start_standalone(dir_, port_, args);
    ASSERT_TRUE(wait_ready(port_)) << process_->log();
  }

  // Submits `feeds` and waits for the batch to complete; returns its snapshot.
  nlohmann::json run_batch(const std::vector<std::string>& feeds) {
    std::string batch = submit_batch(port_, feeds);
    EXPECT_FALSE(batch.empty());
    auto stream = read_sse(port_, "/v1/batches/" + batch + "/events", 60s);
    expect_complete_stream(stream, feeds.size());
    return get_json(port_, "/v1/batches/" + batch);
  }

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

TEST_F(HostileTest, EveryHostileFeedFailsAloneWithItsReason) {
  FeedServer good;
  RawServer hostile;
  install_hostile_routes(hostile);
  start(true);
  struct Case {
    std::string url, keyword;
  };
  const std::vector<Case> cases{
      {good.url(1), ""},
      {hostile.url("/endless"), "body exceeds 1048576 bytes"},
      {hostile.url("/gzip-bomb"), "body exceeds 1048576 bytes"},
      {hostile.url("/byte-a-second"), "too slow"},
      {hostile.url("/trickle"), "too slow: less than 1024 bytes/s for 2 s"},
      {hostile.url("/silent"), "no answer within 2 s (after 2 attempts)"},
      {hostile.url("/redirect-loop"), "too many redirects"},
      {hostile.url("/html"), "not a feed: root element <html>"},
      {hostile.url("/random"), "not a feed"},
      {hostile.url("/empty"), "empty document"},
      {hostile.url("/500"), "HTTP 500"},
      {hostile.url("/429-late"), "Retry-After 3600 s is beyond the job deadline"},
      {hostile.url("/429"), "HTTP 429"},
      {hostile.url("/billion-laughs"), "references another entity"},
      {hostile.url("/deep"), "nesting deeper than 256"},
      {hostile.url("/liar"), "body exceeds 1048576 bytes"},
      {"file:///etc/passwd", "unsupported scheme"},
      {"gopher://127.0.0.1/", "unsupported scheme"},
      {"ftp://127.0.0.1/feed.xml", "unsupported scheme"},
      {"http://", "invalid feed URL"},
      {"not a url", "invalid feed URL"},
  };
  std::vector<std::string> feeds;
  for (const auto& c : cases) feeds.push_back(c.url);
  auto started = std::chrono::steady_clock::now();
  nlohmann::json snap = run_batch(feeds);
  auto took = std::chrono::steady_clock::now() - started;

  EXPECT_EQ(snap["status"], "completed");
  EXPECT_EQ(snap["failed"], static_cast<int>(cases.size()) - 1);
  ASSERT_EQ(snap["jobs"].size(), cases.size());
  EXPECT_EQ(snap["jobs"][0]["status"], "ok") << snap["jobs"][0].dump();
  EXPECT_EQ(snap["jobs"][0]["items_new"], 5);
  for (size_t i = 1; i < cases.size(); ++i) {
    const auto& job = snap["jobs"][i];
    EXPECT_EQ(job["status"], "failed") << cases[i].url;
    EXPECT_NE(error_of(job).find(cases[i].keyword), std::string::npos)
        << cases[i].url << ": expected \"" << cases[i].keyword << "\" in \"" << error_of(job) << "\"";
  }
  // The status of a refused answer is kept; a server error was retried (--fetch-attempts 2).
  EXPECT_EQ(snap["jobs"][10]["http_status"], 500);
  EXPECT_EQ(hostile.requests("/500"), 2);
  EXPECT_EQ(hostile.requests("/429-late"), 1);  // a Retry-After past the deadline is not waited for
  EXPECT_EQ(hostile.requests("/liar"), 1);      // a length over the cap fails at once, not retried
  EXPECT_EQ(hostile.requests("/redirect-loop"), 4);  // the first request and 3 redirects
  // Silence before the first byte is retried like a timeout; a body that began and then trickles
  // fails at once. Both end within the job deadline (--job-deadline-ms 20000).
  EXPECT_EQ(hostile.requests("/silent"), 2);
  EXPECT_EQ(hostile.requests("/trickle"), 1);
  for (size_t i : {4u, 5u}) EXPECT_LT(snap["jobs"][i]["duration_ms"].get<int64_t>(), 20000) << snap["jobs"][i].dump();
  std::cout << "hostile batch of " << cases.size() << " feeds completed in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";

  int status = 0;
  get_json(port_, "/healthz", &status);
  EXPECT_EQ(status, 200);
  // And it still does its work.
  nlohmann::json after = run_batch({good.url(2)});
  EXPECT_EQ(after["jobs"][0]["status"], "ok");
}

TEST_F(HostileTest, ARetryAfterBeyondTheDeadlineIsShownAndHonouredByTheNextJob) {
  RawServer hostile;
  install_hostile_routes(hostile);
  start(true);
  nlohmann::json first = run_batch({hostile.url("/429-late")});
  ASSERT_EQ(first["jobs"][0]["status"], "failed");
  int64_t feed_id = first["jobs"][0]["feed_id"];
  nlohmann::json feed = get_json(port_, "/v1/feeds/" + std::to_string(feed_id));
  ASSERT_TRUE(feed["next_fetch_allowed_at"].is_string()) << feed.dump();
  const std::string last_fetch = feed["last_fetch_at"], next = feed["next_fetch_allowed_at"];
  EXPECT_GT(next, last_fetch) << "Retry-After: 3600 puts the next fetch an hour after the last";

  nlohmann::json second = run_batch({hostile.url("/429-late")});
  EXPECT_EQ(second["jobs"][0]["status"], "failed");
  EXPECT_NE(error_of(second["jobs"][0]).find("not fetched: the server asked (Retry-After) not to be fetched before " + next),
            std::string::npos) << error_of(second["jobs"][0]);
  EXPECT_EQ(hostile.requests("/429-late"), 1) << "the server was knocked on again before its Retry-After";
}

TEST_F(HostileTest, WithoutAllowPrivateNetworksNoLoopbackSpellingGetsThrough) {
  RawServer local;
  local.on("/feed.xml", [](const std::string&, RawServer::Connection& c) {
    c.send(with_length("application/rss+xml", "<rss version=\"2.0\"><channel><title>t</title></channel></rss>"));
  });
  // The server is reachable: without the guard, these URLs would be fetched.
  httplib::Client probe("127.0.0.1", local.port());
  auto res = probe.Get("/feed.xml");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const int before = local.connections();
  start(false);

  const std::string p = std::to_string(local.port());
  std::vector<std::string> spellings{
      "http://localhost:" + p + "/feed.xml",   "http://127.1:" + p + "/feed.xml",
      "http://2130706433:" + p + "/feed.xml",  "http://0x7f000001:" + p + "/feed.xml",
      "http://0177.0.0.1:" + p + "/feed.xml",  "http://[::1]:" + p + "/feed.xml",
      "http://[::ffff:127.0.0.1]:" + p + "/feed.xml", "http://0.0.0.0:" + p + "/feed.xml",
      "http://127.0.0.1:" + p + "/feed.xml",   "http://LocalHost:" + p + "/feed.xml"};
  nlohmann::json snap = run_batch(spellings);
  EXPECT_EQ(snap["failed"], static_cast<int>(spellings.size()));
  for (size_t i = 0; i < spellings.size(); ++i) {
    const auto& job = snap["jobs"][i];
    EXPECT_EQ(job["status"], "failed") << spellings[i];
    std::string error = error_of(job);
    EXPECT_EQ(error.rfind("refused address ", 0), 0u) << spellings[i] << ": " << error;
    EXPECT_TRUE(error.find("(loopback)") != std::string::npos || error.find("(unspecified") != std::string::npos)
        << spellings[i] << ": " << error;
  }
  EXPECT_EQ(local.connections(), before) << "a loopback URL reached the local server";
  if (!local.has_ipv6()) std::cout << "no IPv6 loopback here: [::1] was only checked for its refusal\n";
}

// --allow-networks 127.0.0.2/32 lets exactly that address through: a feed there is fetched, and
// its redirects to any other loopback spelling are refused at the second hop, before a connection
// is opened (the servers on 127.0.0.1 and [::1] count every connection).
TEST_F(HostileTest, AllowNetworksLetsOneAddressThroughAndEveryRedirectHopIsChecked) {
  RawServer local;  // 127.0.0.1 and, when there is IPv6, [::1], at one port
  local.on("/feed.xml", [](const std::string&, RawServer::Connection& c) {
    c.send(with_length("application/rss+xml", "<rss version=\"2.0\"><channel><title>local</title></channel></rss>"));
  });
  RawServer allowed("127.0.0.2");
  const std::string p = std::to_string(local.port());
  allowed.on("/feed.xml", [](const std::string&, RawServer::Connection& c) {
    c.send(with_length("application/rss+xml", "<rss version=\"2.0\"><channel><title>allowed</title></channel></rss>"));
  });
  auto redirect_to = [](const std::string& location) {
    return [location](const std::string&, RawServer::Connection& c) {
      c.send(response_head(302, "Found", "Location: " + location + "\r\nContent-Length: 0\r\n"));
    };
  };
  allowed.on("/to-127", redirect_to("http://127.0.0.1:" + p + "/feed.xml"));
  allowed.on("/to-localhost", redirect_to("http://localhost:" + p + "/feed.xml"));
  allowed.on("/to-v6", redirect_to("http://[::1]:" + p + "/feed.xml"));
  start(false, {"--allow-networks", "127.0.0.2/32"});

  nlohmann::json snap = run_batch({allowed.url("/feed.xml"), allowed.url("/to-127"), allowed.url("/to-localhost"),
                                   allowed.url("/to-v6"), local.url("/feed.xml")});
  ASSERT_EQ(snap["jobs"].size(), 5u);
  EXPECT_EQ(snap["jobs"][0]["status"], "ok") << snap["jobs"][0].dump();
  for (size_t i = 1; i < 5; ++i) {
    const auto& job = snap["jobs"][i];
    EXPECT_EQ(job["status"], "failed") << job.dump();
    std::string error = error_of(job);
    EXPECT_EQ(error.rfind("refused address ", 0), 0u) << error;
    EXPECT_NE(error.find("(loopback, not in --allow-networks 127.0.0.2/32)"), std::string::npos) << error;
  }
  EXPECT_EQ(allowed.requests("/to-127"), 1);  // the first hop was made ...
  EXPECT_EQ(allowed.requests("/to-localhost"), 1);
  EXPECT_EQ(allowed.requests("/to-v6"), 1);
  EXPECT_EQ(local.connections(), 0) << "a redirect reached the server on 127.0.0.1 or [::1]";  // ... the second not
  if (!local.has_ipv6()) std::cout << "no IPv6 loopback here: [::1] was only checked for its refusal\n";
}

}  // namespace
}  // namespace feedpipe::testing
