#include "commands/submit_progress.h"

#include <cmath>
#include <cstdio>

namespace feedpipe::commands {

std::vector<std::string> read_url_list(std::istream& in) {
  std::vector<std::string> urls;
  for (std::string line; std::getline(in, line);) {
    size_t first = line.find_first_not_of(" \t\r\v\f");
    if (first == std::string::npos || line[first] == '#') continue;
    size_t last = line.find_last_not_of(" \t\r\v\f");
    urls.push_back(line.substr(first, last - first + 1));
  }
  return urls;
}

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

std::string progress_bar_line(const WatchProgress& p, int width) {
  long total = std::max(p.total, 1L);
  int filled = static_cast<int>(width * std::min(p.done, total) / total);
  double rate = p.rate();
  std::string eta = p.done >= p.total ? "0s" : rate > 0 ? format_eta((p.total - p.done) / rate) : "?";
  char tail[128];
  std::snprintf(tail, sizeof tail, "] %ld/%ld done, %ld failed, %.1f feeds/s, ETA %s", p.done, p.total, p.failed,
                rate, eta.c_str());
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + tail;
}

std::string job_line(const nlohmann::json& data) {
  auto text = [&](const char* key) {
    return data.contains(key) && data[key].is_string() ? data[key].get<std::string>() : std::string();
  };
  std::string status = text("status");
  std::string line = (status.empty() ? "unknown" : status) + "\t" + text("url");
  if (status == "failed") {
    std::string reason = text("error");
    for (char& c : reason)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';  // one job, one line
    line += "\t" + (reason.empty() ? std::string("(no reason given)") : reason);
  }
  return line;
}

std::string summary_line(const WatchProgress& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%ld/%ld done, %ld failed in %.1f s (%.1f feeds/s)", p.done, p.total, p.failed,
                p.elapsed_s, p.rate());
  return buf;
}

}  // namespace feedpipe::commands
