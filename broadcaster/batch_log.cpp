#include "broadcaster/batch_log.h"

#include <algorithm>

#include "broadcaster/sse.h"

namespace feedpipe {

bool BatchLog::append(const EventMessage& e) {
  if (e.seq != last + 1) return false;
  offsets.push_back(log.size());
  log += sse::format_event(e.seq, e.type, e.data);
  last = e.seq;
  if (e.type == "batch.completed") completed = true;
  return true;
}

size_t BatchLog::offset_after(int64_t cursor) const {
  if (cursor < 0) cursor = 0;
  return cursor < last ? offsets[static_cast<size_t>(cursor)] : log.size();
}

int64_t BatchLog::frames_within(size_t bytes) const {
  if (bytes >= log.size()) return last;
  return (std::upper_bound(offsets.begin(), offsets.end(), bytes) - offsets.begin()) - 1;
}

std::string_view BatchLog::frame_without_id(int64_t seq) const {
  const size_t start = offsets[static_cast<size_t>(seq - 1)];
  const size_t end = seq < last ? offsets[static_cast<size_t>(seq)] : log.size();
  std::string_view frame(log.data() + start, end - start);
  const size_t line_end = frame.find('\n');  // the `id: <seq>` line format_event() writes first
  return frame.substr(line_end + 1);
}

}  // namespace feedpipe
