#include "common/config.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace feedpipe {

Settings::Settings(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

Settings& Settings::add(const std::string& name, const std::string& default_value,
                        const std::string& help) {
  order_.push_back(name);
  entries_[name] = {default_value, default_value, help, false};
  return *this;
}

Settings& Settings::add_switch(const std::string& name, const std::string& help) {
  order_.push_back(name);
  entries_[name] = {"false", "false", help, true};
  return *this;
}

Settings& Settings::positional(const std::string& usage) {
  positional_usage_ = usage;
  return *this;
}

std::string Settings::env_name(const std::string& name) {
  std::string env = "FEEDPIPE_";
  for (char c : name) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

static bool truthy(const std::string& v) {
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

bool Settings::parse(int argc, char** argv) {
  for (auto& [name, e] : entries_) {
    if (const char* v = std::getenv(env_name(name).c_str())) {
      e.value = e.is_switch ? (truthy(v) ? "true" : "false") : v;
      e.given = true;
    }
  }
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      if (positional_usage_.empty()) throw ConfigError("unexpected argument '" + arg + "' (see --help)");
      args_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = entries_.find(name);
    if (it == entries_.end()) throw ConfigError("unknown option --" + name + " (see --help)");
    it->second.given = true;
    if (it->second.is_switch) {
      it->second.value = has_value ? (truthy(value) ? "true" : "false") : "true";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw ConfigError("option --" + name + " needs a value");
      value = argv[++i];
    }
    it->second.value = value;
  }
  return true;
}

const Settings::Entry& Settings::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw std::logic_error("setting not declared: " + name);
  return it->second;
}

std::string Settings::str(const std::string& name) const { return entry(name).value; }

long Settings::integer(const std::string& name) const {
  const std::string& v = entry(name).value;
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') throw ConfigError("--" + name + " must be an integer, not '" + v + "'");
  return n;
}

double Settings::number(const std::string& name) const {
  const std::string& v = entry(name).value;
  char* end = nullptr;
  double n = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') throw ConfigError("--" + name + " must be a number, not '" + v + "'");
  return n;
}

std::chrono::milliseconds Settings::duration(const std::string& name) const {
  return parse_duration(entry(name).value, name);
}

std::chrono::milliseconds parse_duration(const std::string& value, const std::string& setting) {
  auto bad = [&] {
    return ConfigError("--" + setting + " must be a duration such as 90 (seconds), 250ms, 30s, 15m, 12h or 7d, not '" +
                       value + "'");
  };
  size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) ++digits;
  if (digits == 0 || digits > 15) throw bad();
  long long n = std::stoll(value.substr(0, digits));
  std::string unit = value.substr(digits);
  long long ms_per_unit = 0;
  if (unit.empty() || unit == "s") ms_per_unit = 1000;
  else if (unit == "ms") ms_per_unit = 1;
  else if (unit == "m") ms_per_unit = 60'000;
  else if (unit == "h") ms_per_unit = 3'600'000;
  else if (unit == "d") ms_per_unit = 86'400'000;
  else throw bad();
  return std::chrono::milliseconds(n * ms_per_unit);
}

bool Settings::on(const std::string& name) const { return entry(name).value == "true"; }

std::string Settings::help() const {
  std::ostringstream out;
  out << "usage: feedpipe " << command_ << " [options]";
  if (!positional_usage_.empty()) out << " " << positional_usage_;
  out << "\n\n" << summary_ << "\n\noptions (each also an environment variable):\n";
  for (const auto& name : order_) {
    const Entry& e = entries_.at(name);
    std::string flag = "--" + name + (e.is_switch ? "" : " VALUE");
    out << "  " << flag;
    for (size_t pad = flag.size(); pad < 30; ++pad) out << ' ';
    out << " " << e.help << "\n" << std::string(33, ' ') << env_name(name);
    if (!e.is_switch) out << "   default: " << (e.default_value.empty() ? "(none)" : e.default_value);
    out << "\n";
  }
  return out.str();
}

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_comma_list(std::string_view list) {
  std::vector<std::string_view> items;
  while (!list.empty()) {
    size_t end = list.find(',');
    items.push_back(trim_space(list.substr(0, end)));
    list.remove_prefix(end == std::string_view::npos ? list.size() : end + 1);
  }
  return items;
}

std::pair<std::string, int> parse_host_port(const std::string& value, const std::string& setting) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.size())
    throw ConfigError("--" + setting + " must be HOST:PORT, not '" + value + "'");
  std::string host = value.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(value.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535)
    throw ConfigError("--" + setting + ": bad port in '" + value + "'");
  return {host, static_cast<int>(port)};
}

}  // namespace feedpipe
