#pragma once
// A job's outcome as a message on feed.refresh.outcomes (key: batch id): what a consumer without
// a database publishes and a recorder records: the job and its batch, the fetch's result and the
// parsed items, so that the recorder writes exactly what a local consumer would have written.
//
// Binary, because the recorder reads every item of every feed: the magic "FPO", a format version
// byte, then the fields in a fixed order, integers as LEB128 varints (signed ones zigzag),
// strings as a varint length and their bytes. Decoding a message costs a few copies; JSON took
// a fifth of the many-hosts shape's CPU (BENCHMARKS.md). A reader refuses every other version.
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/job_outcomes.h"

namespace feedpipe {

inline constexpr int kOutcomeMessageVersion = 2;  // 1 was JSON, never released

struct OutcomeMessage {
  std::string batch_id;
  JobOutcome outcome;
};

// Why a payload is not an outcome message; `reason()` is a short metric label.
class OutcomeMessageError : public std::invalid_argument {
 public:
  OutcomeMessageError(std::string reason, const std::string& what)
      : std::invalid_argument(what), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }  // malformed | unknown_version | bad_fields

 private:
  std::string reason_;
};

std::string serialize_outcome(const std::string& batch_id, const JobOutcome& outcome);
// Throws OutcomeMessageError.
OutcomeMessage read_outcome_message(std::string_view payload);

}  // namespace feedpipe
