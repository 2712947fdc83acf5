// feedpipe submit: posts a batch to a running API and, with --watch, follows its events.
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

#include "commands/commands.h"
#include "commands/role_settings.h"

namespace feedpipe::commands {
namespace {

void draw_progress(long done, long total, long failed) {
  const int width = 40;
  int filled = total > 0 ? static_cast<int>(width * done / total) : 0;
  std::fprintf(stderr, "\r[%s%s] %ld/%ld done, %ld failed", std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), done, total, failed);
  std::fflush(stderr);
}

}  // namespace

int submit(int argc, char** argv) {
  Settings s("submit", "Submits a batch of feed URLs to a running feedpipe API.");
  s.positional("URL…");
  s.add("api", "http://127.0.0.1:8080", "base URL of the API")
      .add("file", "", "read feed URLs from this file, one per line")
      .add("token", "", "bearer token sent as Authorization: Bearer <token> (when the API requires one)")
      .add_switch("watch", "follow the batch's events with a progress bar until it completes")
      .add("log-level", "warn", "trace, debug, info, warn or error")
      .add("log-format", "text", "text or json");
  if (!parse_settings(s, argc, argv)) return 0;
  nlohmann::json feeds = nlohmann::json::array();
  for (const auto& url : s.args()) feeds.push_back(url);
  if (!s.str("file").empty()) {
    std::ifstream in(s.str("file"));
    if (!in) throw ConfigError("cannot read " + s.str("file"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') feeds.push_back(line);
  }
  if (feeds.empty()) throw ConfigError("give at least one feed URL (or --file)");

  httplib::Client client(s.str("api"));
  client.set_connection_timeout(5, 0);
  httplib::Headers post_headers;
  if (!s.str("token").empty()) post_headers.emplace("Authorization", "Bearer " + s.str("token"));
  auto res = client.Post("/v1/batches", post_headers, nlohmann::json{{"feeds", feeds}}.dump(), "application/json");
  if (!res) {
    std::fprintf(stderr, "feedpipe submit: cannot reach %s: %s\n", s.str("api").c_str(),
                 httplib::to_string(res.error()).c_str());
    return 2;
  }
  if (res->status != 202) {
    std::fprintf(stderr, "feedpipe submit: HTTP %d: %s\n", res->status, res->body.c_str());
    if (res->status == 401)
      std::fprintf(stderr, "feedpipe submit: %s\n",
                   s.str("token").empty() ? "this API needs a bearer token: give --token (or FEEDPIPE_TOKEN)"
                                          : "the API refused the token given with --token");
    return 2;
  }
  auto accepted = nlohmann::json::parse(res->body);
  std::string batch_id = accepted["batch_id"];
  std::printf("%s\n", batch_id.c_str());
  std::fflush(stdout);
  if (!s.on("watch")) return 0;

  long total = static_cast<long>(feeds.size()), done = 0, failed = 0;
  bool completed = false;
  std::string buffer;
  int64_t last_id = 0;
  client.set_read_timeout(60, 0);
  while (!completed) {
    httplib::Headers headers{{"Accept", "text/event-stream"}};
    if (last_id > 0) headers.emplace("Last-Event-ID", std::to_string(last_id));
    buffer.clear();
    auto stream = client.Get(accepted["events_url"].get<std::string>(), headers,
                             [&](const char* data, size_t len) {
      buffer.append(data, len);
      for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
        std::string frame = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        std::string event, payload;
        std::istringstream lines(frame);
        for (std::string line; std::getline(lines, line);) {
          if (line.rfind("id:", 0) == 0) last_id = std::stoll(line.substr(3));
          if (line.rfind("event:", 0) == 0) event = line.substr(line.find_first_not_of(' ', 6));
          if (line.rfind("data:", 0) == 0) payload += line.substr(5);
        }
        if (payload.empty()) continue;
        auto data = nlohmann::json::parse(payload, nullptr, false);
        if (data.is_object() && data.contains("progress")) {
          done = data["progress"].value("done", done);
          failed = data["progress"].value("failed", failed);
          total = data["progress"].value("total", total);
        }
        if (event == "job.failed")
          std::fprintf(stderr, "\r%-80s\n", (data.value("url", std::string()) + ": " +
                                             data.value("error", std::string())).c_str());
        if (event == "batch.completed") completed = true;
        draw_progress(done, total, failed);
      }
      return true;
    });
    if (!stream && !completed) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::fprintf(stderr, "\n");
  return failed > 0 ? 1 : 0;  // 0: every job succeeded; 1: some failed; 2: usage or connection
}

}  // namespace feedpipe::commands
