#include "broadcaster/multi_batch_stream.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "broadcaster/http_request_parser.h"

namespace feedpipe {
namespace {

constexpr size_t kMaxBatchIdBytes = 128;

bool valid_batch_id(const std::string& id) {
  if (id.empty() || id.size() > kMaxBatchIdBytes) return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    return c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

StreamRefusal refusal(std::string code, std::string message) {
  return StreamRefusal{400, std::move(code), std::move(message)};
}

}  // namespace

BatchList parse_batch_list(std::string_view query, size_t max_batches, std::string_view setting) {
  BatchList out;
  out.batch_ids = http1::query_params(query, "batch");
  if (out.batch_ids.empty()) {
    out.refusal = refusal("batch_required", "name the batches to watch: /v1/events?batch=ID&batch=ID…");
    return out;
  }
  if (out.batch_ids.size() > max_batches) {
    out.refusal = refusal("too_many_batches", "a stream watches at most " + std::to_string(max_batches) +
                                                  " batches (" + std::string(setting) + "); this request names " +
                                                  std::to_string(out.batch_ids.size()));
    return out;
  }
  std::unordered_set<std::string_view> seen;
  for (const std::string& id : out.batch_ids) {
    if (!valid_batch_id(id)) {
      out.refusal = refusal("invalid_batch_id", "batch= must be a batch id (1 to 128 bytes, no '/' or control characters)");
      return out;
    }
    if (!seen.insert(id).second) {
      out.refusal = refusal("duplicate_batch", "batch " + id + " is named twice; name each batch once");
      return out;
    }
  }
  return out;
}

void append_stream_id(std::string& out, const std::vector<int64_t>& cursors) {
  char buf[24];
  for (size_t i = 0; i < cursors.size(); ++i) {
    if (i > 0) out += '.';
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, cursors[i]);
    out.append(buf, end);
  }
}

std::optional<std::vector<int64_t>> parse_stream_id(std::string_view text, size_t batches) {
  std::vector<int64_t> out;
  if (text.empty()) {
    out.assign(batches, 0);
    return out;
  }
  out.reserve(batches);
  size_t pos = 0;
  while (true) {
    size_t dot = text.find('.', pos);
    std::string_view part = text.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || value < 0) return std::nullopt;
    out.push_back(value);
    if (out.size() > batches) return std::nullopt;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  if (out.size() != batches) return std::nullopt;
  return out;
}

MultiBatchStream::MultiBatchStream(std::vector<int64_t> cursors)
    : members_(cursors.size()), cursors_(std::move(cursors)) {}

void MultiBatchStream::start() {
  for (Member& m : members_) m.floor = m.log->log.size();
}

size_t MultiBatchStream::fill(std::string& out, size_t limit) {
  const size_t k = members_.size();
  size_t frames = 0;
  bool progress = true;
  while (progress && out.size() < limit) {
    progress = false;
    for (size_t step = 0; step < k && out.size() < limit; ++step) {
      const size_t i = (turn_ + step) % k;
      const BatchLog& log = *members_[i].log;
      if (cursors_[i] >= log.last) continue;
      ++cursors_[i];
      out += "id: ";
      append_stream_id(out, cursors_);
      out += '\n';
      out += log.frame_without_id(cursors_[i]);
      ++frames;
      progress = true;
    }
    turn_ = (turn_ + 1) % k;
  }
  return frames;
}

bool MultiBatchStream::finished() const {
  for (size_t i = 0; i < members_.size(); ++i)
    if (!members_[i].log->completed || cursors_[i] < members_[i].log->last) return false;
  return true;
}

size_t MultiBatchStream::lag() const {
  size_t lag = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    const BatchLog& log = *members_[i].log;
    lag += log.log.size() - std::max(log.offset_after(cursors_[i]), members_[i].floor);
  }
  return lag;
}

}  // namespace feedpipe
