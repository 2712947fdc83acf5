#pragma once
// One watched batch's events as Server-Sent Events frames, in seq order, contiguous in one
// string: the stream loop keeps one log per watched batch and every stream of that batch writes
// from it at its own offset (a single-batch stream's catch-up is one send() from its cursor).
// Frames carry `id: <seq>`; a stream of many batches re-labels each frame with its own id
// (broadcaster/multi_batch_stream.h), so it reads a frame without its id line.
//
// Invariant: frame k (seq k) starts at offsets[k - 1]; last == offsets.size().
// Threading: not thread-safe; the stream loop's thread owns it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/model.h"

namespace feedpipe {

struct BatchLog {
  std::string log;              // every frame so far, in seq order
  std::vector<size_t> offsets;  // offsets[seq - 1]: where frame seq starts in log
  int64_t last = 0;             // the seq of the last frame
  bool completed = false;       // batch.completed is in the log (or the hub says it ended)

  // Appends the event when it is the next seq (the hub hands out seq order); false otherwise.
  bool append(const EventMessage& e);
  // Where the frame after `cursor` starts (the log's end when there is none yet).
  size_t offset_after(int64_t cursor) const;
  // How many whole frames the first `bytes` of the log hold.
  int64_t frames_within(size_t bytes) const;
  // Frame `seq` (1 ≤ seq ≤ last) without its `id:` line: its event and data lines and blank line.
  std::string_view frame_without_id(int64_t seq) const;
};

}  // namespace feedpipe
