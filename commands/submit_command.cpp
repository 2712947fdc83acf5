// feedpipe submit: posts a batch to a running API and, with --watch, follows its events.
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "commands/commands.h"
#include "commands/role_settings.h"
#include "commands/submit_progress.h"

namespace feedpipe::commands {
namespace {

using SteadyClock = std::chrono::steady_clock;

// What --watch prints as events arrive: on a terminal one progress bar redrawn in place (failed
// jobs are printed above it); otherwise one plain line per finished job and a summary line.
class WatchOutput {
 public:
  WatchOutput(bool terminal, SteadyClock::time_point started) : terminal_(terminal), started_(started) {}

  void job(const std::string& event, const nlohmann::json& data) {
    if (terminal_) {
      if (event == "job.failed") std::printf("\r\033[K%s\n", job_line(data).c_str());
    } else {
      std::printf("%s\n", job_line(data).c_str());
    }
  }

  void progress(const WatchProgress& p, bool force) {
    if (!terminal_) return;
    auto now = SteadyClock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;  // 10k events: no flicker
    last_draw_ = now;
    std::printf("\r\033[K%s", progress_bar_line(p).c_str());
    std::fflush(stdout);
  }

  void finish(const WatchProgress& p) {
    if (terminal_) {
      progress(p, true);
      std::printf("\n");
    }
    std::printf("%s\n", summary_line(p).c_str());
    std::fflush(stdout);
  }

  void flush() {
    if (!terminal_) std::fflush(stdout);
  }

  double elapsed_s() const { return std::chrono::duration<double>(SteadyClock::now() - started_).count(); }

 private:
  bool terminal_;
  SteadyClock::time_point started_;
  SteadyClock::time_point last_draw_{};
};

}  // namespace

int submit(int argc, char** argv) {
  Settings s("submit",
             "Submits a batch of feed URLs to a running feedpipe API and prints its id. `-` reads URLs\n"
             "from stdin (one per line; blank lines and # comments skipped). With --watch it follows the\n"
             "batch: a progress bar on a terminal, else one line per finished job (status, URL, reason)\n"
             "and a summary. Exit status: 0 every job ok, 1 some failed, 2 usage or connection errors.");
  s.positional("URL…|-");
  s.add("api", "http://127.0.0.1:8080", "base URL of the API")
      .add("file", "", "read feed URLs from this file, one per line")
      .add_switch("watch", "follow the batch's events with a progress bar until it completes")
      .add("watch-read-timeout-ms", "60000", "reconnect a watch stream silent for this long (the server pings every 15 s)")
      .add("token", "", "bearer token sent as Authorization: Bearer <token> (when the API requires one)")
      .add("log-level", "warn", "trace, debug, info, warn or error")
      .add("log-format", "text", "text or json");
  if (!parse_settings(s, argc, argv)) return 0;
  nlohmann::json feeds = nlohmann::json::array();
  bool stdin_read = false;
  for (const auto& arg : s.args()) {
    if (arg != "-") {
      feeds.push_back(arg);
      continue;
    }
    if (stdin_read) throw ConfigError("'-' (read URLs from stdin) given twice");
    stdin_read = true;
    for (auto& url : read_url_list(std::cin)) feeds.push_back(std::move(url));
  }
  if (!s.str("file").empty()) {
    std::ifstream in(s.str("file"));
    if (!in) throw ConfigError("cannot read --file " + s.str("file"));
    for (auto& url : read_url_list(in)) feeds.push_back(std::move(url));
  }
  if (feeds.empty()) throw ConfigError("give at least one feed URL (arguments, - for stdin, or --file)");
  long read_timeout_ms = s.integer("watch-read-timeout-ms");
  if (read_timeout_ms <= 0) throw ConfigError("--watch-read-timeout-ms must be more than 0");

  auto started = SteadyClock::now();
  httplib::Client client(s.str("api"));
  client.set_connection_timeout(5, 0);
  httplib::Headers post_headers;
  if (!s.str("token").empty()) post_headers.emplace("Authorization", "Bearer " + s.str("token"));
  auto res = client.Post("/v1/batches", post_headers, nlohmann::json{{"feeds", feeds}}.dump(), "application/json");
  if (!res) {
    std::fprintf(stderr, "feedpipe submit: cannot reach %s: %s (is feedpipe running there? see --api)\n",
                 s.str("api").c_str(), httplib::to_string(res.error()).c_str());
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

  WatchOutput out(::isatty(STDOUT_FILENO) == 1, started);
  WatchProgress progress;
  progress.total = static_cast<long>(feeds.size());
  bool completed = false;
  std::string buffer;
  int64_t last_id = 0;
  int failed_connections = 0;
  client.set_read_timeout(read_timeout_ms / 1000, (read_timeout_ms % 1000) * 1000);
  while (!completed) {
    httplib::Headers headers{{"Accept", "text/event-stream"}};
    if (last_id > 0) headers.emplace("Last-Event-ID", std::to_string(last_id));
    buffer.clear();
    int status = 0;
    auto stream = client.Get(
        accepted["events_url"].get<std::string>(), headers,
        [&](const httplib::Response& r) {
          status = r.status;
          return r.status == 200;
        },
        [&](const char* data, size_t len) {
          buffer.append(data, len);
          for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
            std::string frame = buffer.substr(0, end);
            buffer.erase(0, end + 2);
            std::string event, payload;
            int64_t id = 0;
            std::istringstream lines(frame);
            for (std::string line; std::getline(lines, line);) {
              if (line.rfind("id:", 0) == 0) id = std::stoll(line.substr(3));
              if (line.rfind("event:", 0) == 0) event = line.substr(line.find_first_not_of(' ', 6));
              if (line.rfind("data:", 0) == 0) payload += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
            }
            if (payload.empty()) continue;
            if (id > 0) last_id = id;
            auto data = nlohmann::json::parse(payload, nullptr, false);
            if (data.is_object() && data.contains("progress")) {
              progress.done = data["progress"].value("done", progress.done);
              progress.failed = data["progress"].value("failed", progress.failed);
              progress.total = data["progress"].value("total", progress.total);
            }
            progress.elapsed_s = out.elapsed_s();
            if (event == "batch.completed") {
              completed = true;
            } else if (data.is_object()) {
              out.job(event, data);
            }
            out.progress(progress, false);  // finish() draws the last one
          }
          out.flush();
          return true;
        });
    if (completed) break;
    if (status >= 400 && status < 500) {  // an answer that will not change: 404 and the like
      std::fprintf(stderr, "\nfeedpipe submit: watching batch %s: HTTP %d\n", batch_id.c_str(), status);
      return 2;
    }
    if (status == 200) {
      failed_connections = 0;  // the stream ended early (server restarting): resume after last_id
    } else if (++failed_connections >= 30) {
      std::string reason = status ? "HTTP " + std::to_string(status) : httplib::to_string(stream.error());
      std::fprintf(stderr, "\nfeedpipe submit: lost %s while watching batch %s: %s\n", s.str("api").c_str(),
                   batch_id.c_str(), reason.c_str());
      return 2;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  progress.elapsed_s = out.elapsed_s();
  out.finish(progress);
  return progress.failed > 0 ? 1 : 0;  // 0: every job succeeded; 1: some failed; 2: usage or connection
}

}  // namespace feedpipe::commands
