#include "broadcaster/sse.h"

namespace feedpipe::sse {
namespace {

// One line of a field value: CR and LF would end the field early, so they become spaces.
void append_single_line(std::string& out, std::string_view text) {
  for (char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
}

}  // namespace

std::string format_event(int64_t id, std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(data.size() + event.size() + 40);
  out += "id: ";
  out += std::to_string(id);
  out += '\n';
  if (!event.empty()) {
    out += "event: ";
    append_single_line(out, event);
    out += '\n';
  }
  // One data: line per line of data; "\r\n", "\r" and "\n" each end a line.
  size_t start = 0;
  while (true) {
    size_t end = data.find_first_of("\r\n", start);
    out += "data: ";
    out.append(data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out += '\n';
  return out;
}

std::string format_retry(int ms) {
  return "retry: " + std::to_string(ms < 0 ? 0 : ms) + "\n\n";
}

std::string format_comment(std::string_view text) {
  std::string out = ": ";
  append_single_line(out, text);
  out += "\n\n";
  return out;
}

}  // namespace feedpipe::sse
