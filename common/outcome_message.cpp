#include "common/outcome_message.h"

#include <cstdint>

namespace feedpipe {
namespace {

constexpr std::string_view kMagic = "FPO";

class Writer {
 public:
  explicit Writer(size_t reserve) { out_.reserve(reserve); }
  void byte(uint8_t b) { out_ += static_cast<char>(b); }
  void uvarint(uint64_t v) {
    while (v >= 0x80) {
      byte(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<uint8_t>(v));
  }
  void svarint(int64_t v) { uvarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void string(std::string_view s) {
    uvarint(s.size());
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint8_t byte() {
    if (in_.empty()) truncated();
    uint8_t b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }
  uint64_t uvarint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw OutcomeMessageError("bad_fields", "outcome message has an integer longer than 64 bits");
  }
  int64_t svarint() {
    uint64_t u = uvarint();
    return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
  }
  std::string string() {
    uint64_t n = uvarint();
    if (n > in_.size()) truncated();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  size_t remaining() const { return in_.size(); }

 private:
  [[noreturn]] static void truncated() {
    throw OutcomeMessageError("bad_fields", "outcome message ends in the middle of a field");
  }
  std::string_view in_;
};

size_t estimated_size(const std::string& batch_id, const JobOutcome& o) {
  size_t n = 64 + batch_id.size() + o.error.size();
  if (o.fetch) {
    const FeedFetch& f = *o.fetch;
    n += f.final_url.size() + f.etag.size() + f.last_modified.size() + f.title.size() + f.link.size();
    for (const ItemRecord& i : f.items)
      n += 24 + i.guid.size() + i.link.size() + i.title.size() + i.author.size() + i.published.size() +
           i.updated.size() + i.summary.size() + i.content.size();
  }
  return n;
}

}  // namespace

std::string serialize_outcome(const std::string& batch_id, const JobOutcome& o) {
  Writer w(estimated_size(batch_id, o));
  for (char c : kMagic) w.byte(static_cast<uint8_t>(c));
  w.byte(kOutcomeMessageVersion);
  w.svarint(o.job_id);
  w.string(batch_id);
  w.string(to_string(o.status));
  w.svarint(o.http_status);
  w.svarint(o.duration_ms);
  w.string(o.error);
  w.byte(o.retry_after_s ? 1 : 0);
  if (o.retry_after_s) w.svarint(*o.retry_after_s);
  w.byte(o.fetch ? 1 : 0);
  if (o.fetch) {
    const FeedFetch& f = *o.fetch;
    for (const std::string* s : {&f.final_url, &f.etag, &f.last_modified, &f.title, &f.link}) w.string(*s);
    w.uvarint(f.items.size());
    for (const ItemRecord& i : f.items)
      for (const std::string* s : {&i.guid, &i.link, &i.title, &i.author, &i.published, &i.updated, &i.summary, &i.content})
        w.string(*s);
  }
  return w.take();
}

OutcomeMessage read_outcome_message(std::string_view payload) {
  if (payload.substr(0, kMagic.size()) != kMagic || payload.size() == kMagic.size())
    throw OutcomeMessageError("malformed", "not an outcome message (no \"FPO\" and format version at its start)");
  Reader r(payload.substr(kMagic.size()));
  if (int version = r.byte(); version != kOutcomeMessageVersion)
    throw OutcomeMessageError("unknown_version", "outcome message of format version " + std::to_string(version) +
                                                     " (this recorder reads version " +
                                                     std::to_string(kOutcomeMessageVersion) + ")");
  OutcomeMessage m;
  JobOutcome& o = m.outcome;
  o.job_id = r.svarint();
  m.batch_id = r.string();
  auto status = job_status_from_string(r.string());
  if (!status || !is_final(*status)) throw OutcomeMessageError("bad_fields", "outcome message has no final status");
  o.status = *status;
  o.http_status = static_cast<long>(r.svarint());
  o.duration_ms = r.svarint();
  o.error = r.string();
  if (r.byte()) o.retry_after_s = r.svarint();
  if (r.byte()) {
    FeedFetch f;
    for (std::string* s : {&f.final_url, &f.etag, &f.last_modified, &f.title, &f.link}) *s = r.string();
    uint64_t items = r.uvarint();
    if (items > r.remaining() / 8)  // each item is at least its eight lengths
      throw OutcomeMessageError("bad_fields", "outcome message counts more items than it holds");
    f.items.resize(items);
    for (ItemRecord& i : f.items)
      for (std::string* s : {&i.guid, &i.link, &i.title, &i.author, &i.published, &i.updated, &i.summary, &i.content})
        *s = r.string();
    o.fetch = std::move(f);
  }
  if (r.remaining() != 0) throw OutcomeMessageError("bad_fields", "outcome message has bytes after its last field");
  if (o.status != JobStatus::failed && !o.fetch)
    throw OutcomeMessageError("bad_fields", "a successful outcome without its fetch");
  return m;
}

}  // namespace feedpipe
