#pragma once
// A job's outcome as a message on feed.refresh.outcomes (key: batch id): what a consumer without
// a database publishes and a recorder records. JSON with a format version "v", the job and its
// batch, the fetch's result and the parsed items, so that the recorder writes exactly what a
// local consumer would have written.
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/job_outcomes.h"

namespace feedpipe {

inline constexpr int kOutcomeMessageVersion = 1;

struct OutcomeMessage {
  std::string batch_id;
  JobOutcome outcome;
};

// Why a payload is not an outcome message; `reason()` is a short metric label.
class OutcomeMessageError : public std::invalid_argument {
 public:
  OutcomeMessageError(std::string reason, const std::string& what)
      : std::invalid_argument(what), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }  // bad_json | unknown_version | bad_fields

 private:
  std::string reason_;
};

std::string serialize_outcome(const std::string& batch_id, const JobOutcome& outcome);
// Throws OutcomeMessageError.
OutcomeMessage outcome_message_from_json(std::string_view payload);

}  // namespace feedpipe
