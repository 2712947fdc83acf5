#pragma once
// Server-Sent Events framing (the text/event-stream wire format), independent of any server.
// Each function returns one complete frame, ending with the blank line that dispatches it.
// Input never breaks the framing: CR and LF inside an event name or a comment are replaced by
// spaces, and data is split into one `data:` line per line of the input (CRLF, CR and LF all
// end a line), which the browser joins again with "\n".
#include <cstdint>
#include <string>
#include <string_view>

namespace feedpipe::sse {

// "id: 7\nevent: job.completed\ndata: {...}\n\n". An empty event name omits the `event:` line
// (the browser then dispatches "message").
std::string format_event(int64_t id, std::string_view event, std::string_view data);

// "retry: 3000\n\n": how long the browser waits before reconnecting.
std::string format_retry(int ms);

// ": ping\n\n": a comment line, ignored by the browser; used as a heartbeat.
std::string format_comment(std::string_view text);

}  // namespace feedpipe::sse
