#include "common/model.h"

#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "common/json_fields.h"
#include "common/logging.h"

namespace feedpipe {

std::string_view to_string(JobStatus s) {
  switch (s) {
    case JobStatus::queued: return "queued";
    case JobStatus::running: return "running";
    case JobStatus::ok: return "ok";
    case JobStatus::not_modified: return "not_modified";
    case JobStatus::failed: return "failed";
  }
  return "unknown";
}

std::optional<JobStatus> job_status_from_string(std::string_view s) {
  for (auto st : {JobStatus::queued, JobStatus::running, JobStatus::ok, JobStatus::not_modified,
                  JobStatus::failed})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

namespace {

void append_string_field(std::string& out, std::string_view key, std::string_view value) {
  out += '"';
  out += key;
  out += "\":\"";
  append_json_escaped(out, value);
  out += '"';
}

// Reads a job message's fields straight from the parser's events, without the dozen allocations
// of a JSON tree per job. Fields of other names (a newer producer's) are skipped with their values.
class JobMessageReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return other_value(); }
  bool boolean(bool) override { return other_value(); }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return v <= static_cast<number_unsigned_t>(INT64_MAX) ? integer(static_cast<int64_t>(v)) : other_value();
  }
  bool number_float(number_float_t, const string_t&) override { return other_value(); }
  bool binary(binary_t&) override { return other_value(); }
  bool string(string_t& v) override {
    if (depth_ != 1) return other_value();
    if (field_ == kBatchId) m_.batch_id = std::move(v);
    else if (field_ == kUrl) m_.url = std::move(v);
    else if (field_ == kEtag) m_.etag = std::move(v);
    else if (field_ == kLastModified) m_.last_modified = std::move(v);
    else if (field_ == kNotBefore) m_.not_before = std::move(v);
    else return other_value();
    return found();
  }
  bool start_object(std::size_t) override {
    if (depth_ == 0) root_is_object_ = true;
    else other_value();
    return ++depth_, true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) field_ = field_named(k);
    return true;
  }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return other_value() && (++depth_, true); }
  bool end_array() override { return --depth_, true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

  JobMessage result(bool parsed) {
    if (!root_is_object_) throw std::invalid_argument("job message is not a JSON object");
    if (!parsed) throw std::invalid_argument("job message is not valid JSON");
    for (int f = 0; f < kRequired; ++f)
      if (!(seen_ & (1u << f)))
        throw std::invalid_argument(std::string("job message has no \"") + kNames[f] + "\" of the right type");
    return std::move(m_);
  }

 private:
  // The first kRequired fields must be present; the validators are optional (older producers).
  enum Field { kJobId, kBatchId, kPosition, kUrl, kFeedId, kEtag, kLastModified, kNotBefore, kFields, kOther = kFields };
  static constexpr int kRequired = kEtag;
  static constexpr const char* kNames[kFields] = {"job_id", "batch_id", "position", "url",
                                                  "feed_id", "etag", "last_modified", "not_before"};

  static Field field_named(const std::string& k) {
    for (int f = 0; f < kFields; ++f)
      if (k == kNames[f]) return static_cast<Field>(f);
    return kOther;
  }
  bool integer(int64_t v) {
    if (depth_ != 1) return other_value();
    if (field_ == kJobId) m_.job_id = v;
    else if (field_ == kPosition) m_.position = v;
    else if (field_ == kFeedId) m_.feed_id = v;
    else return other_value();
    return found();
  }
  bool found() {
    seen_ |= 1u << field_;
    return true;
  }
  // A value that is no field's, or of the wrong type for its field (which then counts as
  // missing). A scalar or an array as the whole message stops the parser.
  bool other_value() {
    if (depth_ == 1 && field_ != kOther) seen_ &= ~(1u << field_);
    return depth_ > 0;
  }

  JobMessage m_;
  Field field_ = kOther;
  int depth_ = 0;
  bool root_is_object_ = false;
  unsigned seen_ = 0;
};

}  // namespace

// Written as text: publishing a 20,000-job batch took 90-120 ms with a JSON tree per message,
// 20-40 ms so.
std::string serialize(const JobMessage& m) {
  std::string s = "{\"job_id\":" + std::to_string(m.job_id) + ",";
  append_string_field(s, "batch_id", m.batch_id);
  s += ",\"position\":" + std::to_string(m.position) + ",";
  append_string_field(s, "url", m.url);
  s += ",\"feed_id\":" + std::to_string(m.feed_id);
  for (auto [key, value] : {std::pair<std::string_view, const std::string*>{"etag", &m.etag},
                            {"last_modified", &m.last_modified},
                            {"not_before", &m.not_before}}) {
    if (value->empty()) continue;
    s += ',';
    append_string_field(s, key, *value);
  }
  s += '}';
  return s;
}

JobMessage job_message_from_json(std::string_view payload) {
  JobMessageReader reader;
  bool parsed = nlohmann::json::sax_parse(payload, &reader);
  return reader.result(parsed);
}

std::string serialize(const EventMessage& m) {
  // data is already JSON text; embed it without reparsing.
  std::string s = "{";
  append_string_field(s, "batch_id", m.batch_id);
  s += ",\"seq\":" + std::to_string(m.seq) + ",";
  append_string_field(s, "event", m.type);
  s += ",\"data\":";
  s += m.data;
  s += "}";
  return s;
}

namespace {

// A string value as written without escapes or anything but printable ASCII (batch ids, event
// types): its text between the quotes.
std::optional<std::string_view> plain_string(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::nullopt;
  raw = raw.substr(1, raw.size() - 2);
  for (char c : raw)
    if (c == '\\' || c == '"' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x80)
      return std::nullopt;
  return raw;
}

// A non-negative integer as JSON writes it.
std::optional<int64_t> plain_integer(std::string_view raw) {
  if (raw.empty() || (raw.size() > 1 && raw.front() == '0')) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), value);
  if (ec != std::errc() || end != raw.data() + raw.size() || value < 0) return std::nullopt;
  return value;
}

// The event messages serialize() writes, read at every event by every broadcaster: the four fields
// split out without a tree, `data` kept as its raw text (checked to be JSON). Anything else (other
// fields, escapes, repeats) is left to the full parser, which reads it or says what is wrong.
std::optional<EventMessage> plain_event_message(std::string_view payload) {
  struct {
    std::optional<std::string_view> batch_id, type, data;
    std::optional<int64_t> seq;
  } f;
  // One captured reference: std::function keeps it without a heap allocation per event.
  bool plain = split_json_object(payload, [&f](std::string_view key, std::string_view raw) {
    if (key == "batch_id" && !f.batch_id) return (f.batch_id = plain_string(raw)).has_value();
    if (key == "event" && !f.type) return (f.type = plain_string(raw)).has_value();
    if (key == "seq" && !f.seq) return (f.seq = plain_integer(raw)).has_value();
    if (key == "data" && !f.data) {
      f.data = raw;
      return true;
    }
    return false;
  });
  if (!plain || !f.batch_id || !f.type || !f.seq || !f.data || !nlohmann::json::accept(*f.data)) return std::nullopt;
  return EventMessage{std::string(*f.batch_id), *f.seq, std::string(*f.type), std::string(*f.data)};
}

}  // namespace

EventMessage event_message_from_json(std::string_view payload) {
  if (auto plain = plain_event_message(payload)) return std::move(*plain);
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("event message is not a JSON object");
  try {
    EventMessage m;
    m.batch_id = j.at("batch_id").get<std::string>();
    // An integer that fits: converting a float or a larger number to int64_t is undefined.
    const auto& seq = j.at("seq");
    if (!seq.is_number_integer() || (seq.is_number_unsigned() && seq.get<uint64_t>() > INT64_MAX))
      throw std::invalid_argument("event message has a \"seq\" that is not an integer of 64 bits: " + seq.dump());
    m.seq = seq.get<int64_t>();
    m.type = j.at("event").get<std::string>();
    m.data = j.at("data").dump();
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("event message is missing a field: ") + e.what());
  }
}

}  // namespace feedpipe
