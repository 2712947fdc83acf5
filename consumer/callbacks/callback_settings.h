#pragma once
// The settings of the callback sender (DESIGN.md, Callbacks), each a --callback-* flag
// (commands/role_settings.cpp) except the address rules, which are the fetch's own.
#include <chrono>
#include <cstddef>
#include <string>

#include "common/callbacks/retry_schedule.h"
#include "common/ip_network.h"

namespace feedpipe::callbacks {

struct CallbackSettings {
  std::string db_path;
  std::string secret;  // empty: no Feedpipe-Signature header
  RetryPolicy retry;
  long connect_timeout_ms = 5000;
  long timeout_ms = 10000;            // one attempt, from connect to the last byte read
  long low_speed_bytes_per_s = 1024;  // an answer slower than this …
  long low_speed_window_s = 10;       // … for this long is abandoned (and retried)
  size_t max_response_bytes = 64 * 1024;  // the answer's body is read up to this, then dropped
  size_t max_in_flight = 16;              // concurrent POSTs of one sender
  std::chrono::milliseconds poll_interval{500};  // how often the queue is read for due callbacks
  // A claim's lease: a sender that dies holds its callbacks this long. More than timeout_ms.
  std::chrono::milliseconds claim_lease{60000};
  bool allow_private_networks = false;  // the fetch's --allow-private-networks …
  IpNetworks allow_networks;            // … and --allow-networks
  std::string user_agent = "feedpipe/0.1";
};

}  // namespace feedpipe::callbacks
