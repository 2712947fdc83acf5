#pragma once
// The domain vocabulary shared by every role: job and batch states, the messages that travel on
// Kafka, and the names of the topics. Messages are JSON so that kcat shows them readably.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace feedpipe {

inline constexpr std::string_view kJobsTopic = "feed.refresh.jobs";
inline constexpr std::string_view kEventsTopic = "feed.refresh.events";
// Outcomes of consumers without a database, read by recorders (key: batch id).
inline constexpr std::string_view kOutcomesTopic = "feed.refresh.outcomes";
inline constexpr std::string_view kConsumerGroup = "feedpipe-consumers";
inline constexpr std::string_view kRecorderGroup = "feedpipe-recorders";
// The largest message the topics feedpipe creates accept (their max.message.bytes).
inline constexpr int kMaxMessageBytes = 16 << 20;

enum class JobStatus { queued, running, ok, not_modified, failed };
std::string_view to_string(JobStatus s);
std::optional<JobStatus> job_status_from_string(std::string_view s);
inline bool is_final(JobStatus s) {
  return s == JobStatus::ok || s == JobStatus::not_modified || s == JobStatus::failed;
}

// One feed to refresh, as published to kJobsTopic (key: the normalized feed URL).
struct JobMessage {
  int64_t job_id = 0;
  std::string batch_id;
  int64_t position = 0;
  std::string url;  // normalized feed URL
  int64_t feed_id = 0;
  // What the fetch needs from the feed's stored state, so that a consumer without a database
  // can fetch conditionally: the validators of the last fetch, and the time (RFC 3339 UTC)
  // before which a Retry-After asked not to fetch. Empty when unknown (and in messages of
  // producers before these fields existed); empty fields are left out of the message.
  std::string etag, last_modified, not_before;
};
std::string serialize(const JobMessage& m);
// Throws std::invalid_argument with a readable message when the payload is not a job.
JobMessage job_message_from_json(std::string_view payload);

// A committed event, as published to kEventsTopic (key: batch id) and sent over SSE.
struct EventMessage {
  std::string batch_id;
  int64_t seq = 0;
  std::string type;  // job.completed | job.failed | batch.completed
  std::string data;  // the JSON text sent as SSE data
};
std::string serialize(const EventMessage& m);
EventMessage event_message_from_json(std::string_view payload);

}  // namespace feedpipe
