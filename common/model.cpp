#include "common/model.h"

#include <stdexcept>

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

nlohmann::json to_json(const JobMessage& m) {
  return {{"job_id", m.job_id}, {"batch_id", m.batch_id}, {"position", m.position},
          {"url", m.url}, {"feed_id", m.feed_id}};
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
  nlohmann::json head{{"batch_id", m.batch_id}, {"seq", m.seq}, {"event", m.type}};
  std::string s = head.dump();
  s.pop_back();
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
