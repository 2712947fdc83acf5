#include "common/model.h"

#include <stdexcept>

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

}  // namespace

// Written as text: one message per job of every batch, so a JSON tree per message showed up.
std::string serialize(const JobMessage& m) {
  std::string s = "{\"job_id\":" + std::to_string(m.job_id) + ",";
  append_string_field(s, "batch_id", m.batch_id);
  s += ",\"position\":" + std::to_string(m.position) + ",";
  append_string_field(s, "url", m.url);
  s += ",\"feed_id\":" + std::to_string(m.feed_id) + "}";
  return s;
}

JobMessage job_message_from_json(std::string_view payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("job message is not a JSON object");
  try {
    JobMessage m;
    m.job_id = j.at("job_id").get<int64_t>();
    m.batch_id = j.at("batch_id").get<std::string>();
    m.position = j.at("position").get<int64_t>();
    m.url = j.at("url").get<std::string>();
    m.feed_id = j.at("feed_id").get<int64_t>();
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("job message is missing a field: ") + e.what());
  }
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

EventMessage event_message_from_json(std::string_view payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("event message is not a JSON object");
  try {
    EventMessage m;
    m.batch_id = j.at("batch_id").get<std::string>();
    m.seq = j.at("seq").get<int64_t>();
    m.type = j.at("event").get<std::string>();
    m.data = j.at("data").dump();
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("event message is missing a field: ") + e.what());
  }
}

}  // namespace feedpipe
