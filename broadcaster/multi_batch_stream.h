#pragma once
// A stream of many batches, GET /v1/events?batch=A&batch=B…, apart from sockets and the loop:
// the request's batch list, the stream's event ids, and one cursor per batch into that batch's
// log (broadcaster/batch_log.h), shared with every other stream of the batch.
//
// Event ids: each frame of the stream carries `id:` with every batch's last seq sent so far, in
// the order of the request's batch= parameters, joined by '.' ("3.0.17"). A reconnecting
// EventSource sends the last one back as Last-Event-ID with the same URL, and every batch resumes
// after its own seq: no gap and no repeat, on any broadcaster (the seqs come from the source of
// truth). Clients treat the id as opaque. With one batch it is that batch's seq, as on
// /v1/batches/{id}/events.
//
// Order: each batch's events in seq order, each once; batches take turns (one event each per
// turn), so a long history does not hold up the others.
//
// Threading: not thread-safe; the stream loop's thread owns it, and the logs it points to.
// Errors: the request's refusals are values (StreamRefusal) the loop answers as JSON.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broadcaster/batch_log.h"

namespace feedpipe {

// A refused stream request: the HTTP status and the {"error":{"code","message"}} body.
struct StreamRefusal {
  int status = 400;
  std::string code;
  std::string message;
};

// The batches of a request, in the order of its batch= parameters, or why they are refused:
// none (400 batch_required), more than max_batches (400 too_many_batches), an id that is empty,
// longer than 128 bytes, or holds '/' or a control byte (400 invalid_batch_id), the same batch
// twice (400 duplicate_batch). `setting` names the limit in the message.
struct BatchList {
  std::vector<std::string> batch_ids;
  std::optional<StreamRefusal> refusal;
};
BatchList parse_batch_list(std::string_view query, size_t max_batches, std::string_view setting);

// The id of a stream's frame from the cursors of its batches ("3.0.17"); appended to `out`.
void append_stream_id(std::string& out, const std::vector<int64_t>& cursors);
// A Last-Event-ID of a stream of `batches` batches back into one seq per batch; empty text is
// all zeros; nullopt when it is not `batches` non-negative integers joined by '.'.
std::optional<std::vector<int64_t>> parse_stream_id(std::string_view text, size_t batches);

class MultiBatchStream {
 public:
  // One batch of the stream.
  struct Member {
    BatchLog* log = nullptr;  // the batch's log (the loop's, shared with the batch's other streams)
    size_t slot = 0;          // the loop's index of this member in the batch's list of streams
    size_t floor = 0;         // the log's size when the stream started (its catch-up is not lag)
  };

  // `cursors`: the seq each batch resumes after (Last-Event-ID), one per batch, in request order.
  explicit MultiBatchStream(std::vector<int64_t> cursors);

  std::vector<Member>& members() { return members_; }
  const std::vector<Member>& members() const { return members_; }

  // History reads still in flight for this stream's batches (the loop's async first reads);
  // the stream starts when none is.
  size_t loads_pending = 0;

  // Marks where each log stands now: what it already holds is catch-up, not lag.
  void start();
  // Appends frames (re-labelled with the stream's ids) after each batch's cursor to `out`, in
  // turns, until `out` holds `limit` bytes or nothing is left; advances the cursors. Returns the
  // number of frames appended.
  size_t fill(std::string& out, size_t limit);
  // True once every batch has completed and every completed batch's last frame was appended.
  bool finished() const;
  // The bytes of live frames not yet appended (beyond the catch-up at start()).
  size_t lag() const;
  // The cursor of member i (the last seq appended, or the resume point).
  int64_t cursor(size_t i) const { return cursors_[i]; }

 private:
  std::vector<Member> members_;
  std::vector<int64_t> cursors_;  // cursors_[i]: the last seq of member i appended
  size_t turn_ = 0;               // the member that goes first in the next fill()
};

}  // namespace feedpipe
