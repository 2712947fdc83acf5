#pragma once
// Delivery metrics of the SSE streams, shared by the event-loop front (stream_server) and the
// thread-per-stream routes (stream_routes):
//   feedpipe_events_delivered_total           events written to streams, replays included
//                                              (counted once the kernel took the whole frame)
//   feedpipe_event_delivery_latency_seconds   now − the event's `ts` (its commit), observed once
//                                              per live event when it is first written to a socket
//   feedpipe_event_arrival_lag_seconds        now − `ts` when the event reaches the hub: through
//                                              Kafka, or in process in `standalone`
// Callers add in bulk (one atomic add per fan-out, not per stream).
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/metrics.h"

namespace feedpipe::delivery {

metrics::Counter& events_delivered();
metrics::Histogram& delivery_latency();

// The top-level "ts" (Unix ms) of an event's data JSON, found without parsing the whole
// document (event data is written by job_outcomes with "ts" as a top-level number); nullopt
// when absent.
std::optional<int64_t> event_ts_ms(std::string_view data);

// Observes now − ts in seconds (0 when the writer's clock is ahead of ours).
void observe_latency(int64_t ts_ms, int64_t now_ms);

// Observes now − the event's ts in the arrival histogram (events without ts are skipped).
void observe_arrival(std::string_view event_data);

}  // namespace feedpipe::delivery
