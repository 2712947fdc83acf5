#pragma once
// The public HTTP front of the broadcaster: one epoll event loop on one thread that owns the
// listening port, serves every Server-Sent Events stream itself, and forwards every other request
// to a cpp-httplib server on an internal loopback port (cpp-httplib 0.11.4 holds a pool thread
// per connection and cannot hand a socket over, so it cannot hold thousands of streams).
//
//   GET /v1/batches/{id}/events (unless Accept asks for application/json only): served here.
//     `retry:` first, then the events after Last-Event-ID (header, else ?last_event_id=), then
//     live events as the EventHub receives them, a `: ping` after each heartbeat of silence, and
//     the connection closes after batch.completed. 404 JSON for an unknown batch, 400 for a bad
//     cursor, 503 + Retry-After when max_streams are open; 429 + Retry-After when the client's
//     address opens streams faster than stream_rate_per_minute or holds max_streams_per_ip;
//     403 without the batch's signed token when stream_token_secret is set. With CORS on, an
//     admitted Origin gets Access-Control-Allow-Origin on the stream and on these refusals.
//   GET /v1/events?batch=A&batch=B… (the same Accept rule): one stream for up to
//     max_stream_batches batches (broadcaster/multi_batch_stream.h: each batch's events in seq
//     order, each once; `id:` is a token of the stream that Last-Event-ID resumes every batch
//     from). Ends once every batch has completed. Every batch is checked before the head is sent:
//     400 for a bad, duplicate or missing batch or more than max_stream_batches, 404 for an
//     unknown one; with stream tokens, one ?token= per batch=, in the same order. The caps, rate
//     limits and CORS are a batch's stream's (it counts as one stream).
//   Anything else: relayed to the backend (request head with Connection: close and
//     X-Forwarded-For, then the body, Content-Length bounded; chunked request bodies get 411),
//     the backend's response bytes relayed back until it closes; then the client is closed.
//
// Fan-out: streams are grouped by batch; a group holds one hub Subscription (one source read of
// the batch's history however many clients join or reconnect at once; that first read runs on the
// loop, or with async_first_read on a thread of its own while the batch's streams wait; a source
// that cannot be read answers 503 events_unavailable + Retry-After) and the batch's events
// already formatted as SSE frames, contiguous, so a stream's catch-up is one send() from its
// cursor. The hub's growth listener marks batches dirty and wakes the loop through an eventfd;
// the loop then pulls the new events once per batch and writes them to that batch's streams only.
// A stream of many batches sits in the group of each of its batches, so a batch's events visit
// only its own streams; its frames carry its own ids, so they are copied into its buffer, at most
// 16 KB (and one frame) at a time as the kernel takes them.
// Slow clients: what the kernel does not take waits in the stream's own buffer, bounded by
// stream_buffer_bytes; a client that would overflow it is dropped (it reconnects with
// Last-Event-ID). Heartbeats: one min-heap of deadlines, no timer per stream.
//
// Files: the loop and its connections (stream_server.cpp), the streams and their fan-out
// (stream_server_streams.cpp), the forwarding (stream_server_forwarding.cpp), and the state they
// share (stream_server_impl.h).
//
// Threading: listen() and start() from one thread; stop() from any thread (idempotent; it sends a
// final `retry:` to every open stream, closes every connection and joins the loop). The hub must
// outlive the server; the server must be constructed before the hub receives events for it.
// Errors: listen() throws std::runtime_error when it cannot bind.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "broadcaster/event_hub.h"
#include "common/client_address.h"
#include "common/cors.h"

namespace feedpipe {

struct StreamServerSettings {
  std::string backend_host = "127.0.0.1";      // where other requests go (the cpp-httplib server)
  int backend_port = 0;                        // 0: no backend, other requests get 404
  size_t max_streams = 20000;                  // open streams beyond this get 503
  size_t max_stream_batches = 100;             // batches one GET /v1/events may name (more: 400)
  size_t stream_buffer_bytes = 256 * 1024;     // per-stream output the kernel has not taken
  size_t max_head_bytes = 16 * 1024;           // larger request heads get 431
  size_t max_body_bytes = 16u << 20;           // larger forwarded bodies get 413
  std::chrono::milliseconds heartbeat{15000};  // `: ping` after this much silence
  std::chrono::milliseconds head_timeout{30000};  // a request head must arrive within this
  int retry_ms = 3000;                         // the `retry:` hint
  int backlog = 4096;
  // Several servers (event loops) may listen on the same port; the kernel spreads connections.
  bool reuse_port = false;
  // Read a batch's history (its first subscription) on a thread of its own instead of the loop,
  // for sources that may be slow (a broadcaster with --api): streams of that batch wait for it,
  // the loop serves the others meanwhile.
  bool async_first_read = false;
  // Access (off unless configured). Stream opens per minute per client address (0: no limit),
  // then 429 + Retry-After; open streams per client address (0: no cap), then 429; clients the
  // rate limiter remembers; the secret of signed stream tokens (empty: no token needed, else
  // ?token= must be the batch's token or 403); origins that may open streams (CORS); proxies
  // whose X-Forwarded-For names the client.
  long stream_rate_per_minute = 0;
  size_t max_streams_per_ip = 20000;
  size_t rate_limit_max_clients = 100000;
  std::string stream_token_secret;
  CorsPolicy cors;
  TrustedProxies trusted_proxies = TrustedProxies::parse("127.0.0.1,::1");
};

class StreamServer {
 public:
  StreamServer(EventHub& hub, StreamServerSettings settings);
  ~StreamServer();  // stop()
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Raises the open-file soft limit to the hard limit, binds host:port (0: any free port) with
  // SO_REUSEADDR and listens; returns the bound port.
  int listen(const std::string& host, int port);
  // Runs the event loop on a thread of its own.
  void start();
  // Ends every stream with a final `retry:`, closes every connection, joins the loop.
  void stop();

  // Streams open, and streams waiting for their batch's history (async_first_read).
  size_t open_streams() const;
  // How many times the fan-out visited a stream to write a batch's new events: a batch's events
  // visit only that batch's streams, those of many batches included (tests check the cost).
  uint64_t fan_out_visits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedpipe
