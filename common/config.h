#pragma once
// Command-line settings: every setting is a flag `--name VALUE` (or `--name=VALUE`) and an
// environment variable FEEDPIPE_NAME (upper case, '-' → '_'); the flag wins. `--help` prints
// every setting with its default.
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace feedpipe {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Settings {
 public:
  Settings(std::string command, std::string summary);

  // A setting that takes a value.
  Settings& add(const std::string& name, const std::string& default_value, const std::string& help);
  // A boolean switch: `--name` (or FEEDPIPE_NAME=1|true|yes) turns it on.
  Settings& add_switch(const std::string& name, const std::string& help);
  // Accept positional arguments, described in the usage line (e.g. "FILE|-").
  Settings& positional(const std::string& usage);

  // Reads the environment, then the arguments after the command name. Throws ConfigError with a
  // message naming the bad flag. Returns false when --help was given (help() is then printed).
  bool parse(int argc, char** argv);

  std::string str(const std::string& name) const;
  long integer(const std::string& name) const;  // throws ConfigError when not a number
  double number(const std::string& name) const;
  // A duration: a number of seconds ("90"), or a number with a unit: ms, s, m, h or d ("7d",
  // "12h", "30m", "250ms"). Throws ConfigError naming the setting when it is not one.
  std::chrono::milliseconds duration(const std::string& name) const;
  bool on(const std::string& name) const;
  // True when the setting came from its flag or its environment variable, not its default.
  bool given(const std::string& name) const { return entry(name).given; }
  const std::vector<std::string>& args() const { return args_; }
  std::string help() const;
  static std::string env_name(const std::string& name);

 private:
  struct Entry {
    std::string value, default_value, help;
    bool is_switch = false;
    bool given = false;
  };
  const Entry& entry(const std::string& name) const;

  std::string command_, summary_, positional_usage_;
  std::vector<std::string> order_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> args_;
};

// Parses a duration as Settings::duration() does; `setting` names the flag in the error.
std::chrono::milliseconds parse_duration(const std::string& value, const std::string& setting);

// `s` without surrounding whitespace.
std::string_view trim_space(std::string_view s);

// The items of a comma-separated setting, each trimmed; empty items are kept (callers skip them).
std::vector<std::string_view> split_comma_list(std::string_view list);

// Splits "host:port" (host may be [v6]); throws ConfigError.
std::pair<std::string, int> parse_host_port(const std::string& value, const std::string& setting);

}  // namespace feedpipe
