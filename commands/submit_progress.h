#pragma once
// The text `feedpipe submit` prints: the URL list it reads (a file or stdin), the progress bar
// redrawn in place on a terminal, and the plain lines written instead when stdout is not one
// (a job per line, then a summary), so that scripts and CI logs get something greppable.
#include <nlohmann/json.hpp>

#include <istream>
#include <string>
#include <vector>

namespace feedpipe::commands {

// One URL per line; surrounding whitespace trimmed; blank lines and lines starting with '#' skipped.
std::vector<std::string> read_url_list(std::istream& in);

struct WatchProgress {
  long total = 0, done = 0, failed = 0;
  double elapsed_s = 0;  // since the batch was submitted
  double rate() const { return elapsed_s > 0 ? done / elapsed_s : 0; }  // feeds per second
};

// "1h02m", "3m05s", "12s"; "?" when unknown (no progress yet).
std::string format_eta(double seconds);

// "[##########..........] 15/30 done, 1 failed, 12.5 feeds/s, ETA 1s" (no newline).
std::string progress_bar_line(const WatchProgress& p, int width = 30);

// A finished job from its event data: "ok\tURL", "not_modified\tURL", "failed\tURL\tREASON".
std::string job_line(const nlohmann::json& data);

// "30/30 done, 2 failed in 2.4 s (12.5 feeds/s)".
std::string summary_line(const WatchProgress& p);

}  // namespace feedpipe::commands
