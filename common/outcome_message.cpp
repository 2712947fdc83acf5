#include "common/outcome_message.h"

#include <nlohmann/json.hpp>

#include "common/logging.h"

namespace feedpipe {
namespace {

// Written as text like the other messages (and with invalid UTF-8 replaced, so that every
// message parses); read back as a JSON tree.
void append_key(std::string& out, std::string_view key) {
  out += '"';
  out += key;
  out += "\":";
}

void append_string(std::string& out, std::string_view key, std::string_view value, bool first = false) {
  if (!first) out += ',';
  append_key(out, key);
  out += '"';
  append_json_escaped(out, value);
  out += '"';
}

void append_integer(std::string& out, std::string_view key, int64_t value) {
  out += ',';
  append_key(out, key);
  out += std::to_string(value);
}

std::string string_field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (!it->is_string()) throw OutcomeMessageError("bad_fields", std::string("\"") + key + "\" is not a string");
  return it->get<std::string>();
}

int64_t integer_field(const nlohmann::json& object, const char* key, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) throw OutcomeMessageError("bad_fields", std::string("no \"") + key + "\"");
    return 0;
  }
  if (!it->is_number_integer()) throw OutcomeMessageError("bad_fields", std::string("\"") + key + "\" is not an integer");
  return it->get<int64_t>();
}

}  // namespace

std::string serialize_outcome(const std::string& batch_id, const JobOutcome& o) {
  std::string s = "{\"v\":" + std::to_string(kOutcomeMessageVersion);
  append_integer(s, "job_id", o.job_id);
  append_string(s, "batch_id", batch_id);
  append_string(s, "status", to_string(o.status));
  append_integer(s, "http_status", o.http_status);
  append_integer(s, "duration_ms", o.duration_ms);
  if (!o.error.empty()) append_string(s, "error", o.error);
  if (o.retry_after_s) append_integer(s, "retry_after_s", *o.retry_after_s);
  if (o.fetch) {
    const FeedFetch& f = *o.fetch;
    s += ",\"fetch\":{";
    append_string(s, "final_url", f.final_url, true);
    append_string(s, "etag", f.etag);
    append_string(s, "last_modified", f.last_modified);
    append_string(s, "title", f.title);
    append_string(s, "link", f.link);
    s += ",\"items\":[";
    for (size_t i = 0; i < f.items.size(); ++i) {
      const ItemRecord& item = f.items[i];
      if (i) s += ',';
      s += '{';
      append_string(s, "guid", item.guid, true);
      append_string(s, "link", item.link);
      append_string(s, "title", item.title);
      append_string(s, "author", item.author);
      append_string(s, "published", item.published);
      append_string(s, "updated", item.updated);
      append_string(s, "summary", item.summary);
      append_string(s, "content", item.content);
      s += '}';
    }
    s += "]}";
  }
  s += '}';
  return s;
}

OutcomeMessage outcome_message_from_json(std::string_view payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded()) throw OutcomeMessageError("bad_json", "outcome message is not valid JSON");
  if (!j.is_object()) throw OutcomeMessageError("bad_json", "outcome message is not a JSON object");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer())
    throw OutcomeMessageError("unknown_version", "outcome message has no format version \"v\"");
  if (v->get<int64_t>() != kOutcomeMessageVersion)
    throw OutcomeMessageError("unknown_version", "outcome message of format version " + v->dump() +
                                                     " (this recorder reads version " +
                                                     std::to_string(kOutcomeMessageVersion) + ")");
  OutcomeMessage m;
  JobOutcome& o = m.outcome;
  o.job_id = integer_field(j, "job_id", true);
  m.batch_id = string_field(j, "batch_id");
  auto status = job_status_from_string(string_field(j, "status"));
  if (!status || !is_final(*status)) throw OutcomeMessageError("bad_fields", "outcome message has no final \"status\"");
  o.status = *status;
  o.http_status = static_cast<long>(integer_field(j, "http_status", false));
  o.duration_ms = integer_field(j, "duration_ms", false);
  o.error = string_field(j, "error");
  if (auto it = j.find("retry_after_s"); it != j.end() && !it->is_null())
    o.retry_after_s = integer_field(j, "retry_after_s", true);
  if (auto it = j.find("fetch"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw OutcomeMessageError("bad_fields", "\"fetch\" is not an object");
    const auto& jf = *it;
    FeedFetch f{string_field(jf, "final_url"), string_field(jf, "etag"), string_field(jf, "last_modified"),
                string_field(jf, "title"), string_field(jf, "link"), {}};
    if (auto items = jf.find("items"); items != jf.end() && !items->is_null()) {
      if (!items->is_array()) throw OutcomeMessageError("bad_fields", "\"items\" is not an array");
      f.items.reserve(items->size());
      for (const auto& ji : *items) {
        if (!ji.is_object()) throw OutcomeMessageError("bad_fields", "an item is not an object");
        f.items.push_back({string_field(ji, "guid"), string_field(ji, "link"), string_field(ji, "title"),
                           string_field(ji, "author"), string_field(ji, "published"), string_field(ji, "updated"),
                           string_field(ji, "summary"), string_field(ji, "content")});
      }
    }
    o.fetch = std::move(f);
  }
  if (o.status != JobStatus::failed && !o.fetch)
    throw OutcomeMessageError("bad_fields", "a successful outcome without its \"fetch\"");
  return m;
}

}  // namespace feedpipe
