#pragma once
// HTTP helpers shared by every role that serves HTTP (cpp-httplib): JSON answers and errors in
// DESIGN.md's shape {"error":{"code","message"}}, the health endpoints, and a server set up with
// a deliberate thread pool.
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/client_address.h"
#include "common/cors.h"

namespace feedpipe {

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message);
// 429 with Retry-After (whole seconds, at least 1) and the JSON error.
void send_rate_limited(httplib::Response& res, int retry_after_s, const std::string& message);

// The request's client address for per-client limits (see common/client_address.h).
std::string client_address(const httplib::Request& req, const TrustedProxies& proxies);

// Cross-origin access for every route of `server` (nothing when the policy is off): responses to
// an admitted Origin carry Access-Control-Allow-Origin and Vary: Origin; OPTIONS is answered
// as a preflight (204 with the allowed methods and headers; 403 for an origin not admitted).
void enable_cors(httplib::Server& server, const CorsPolicy& policy);

struct HttpServerSettings {
  int threads = 256;                  // each open SSE stream holds one thread (cpp-httplib's model)
  size_t max_body_bytes = 16u << 20;  // larger request bodies are refused with 413
  int keep_alive_max_count = 1000;
  int read_timeout_s = 30;
};

// A server with the thread pool and limits set, and an error handler that gives bodiless
// error answers (404, 405, 413 …) the JSON error shape.
std::unique_ptr<httplib::Server> make_server(const HttpServerSettings& settings);

// Answers every other method of `pattern` (POST, PUT, DELETE, PATCH unless listed in `allowed`)
// with 405, an `Allow` header and the JSON error shape; cpp-httplib alone would answer 404.
void refuse_other_methods(httplib::Server& server, const std::string& pattern,
                          const std::vector<std::string>& allowed);

// An empty string means ready; otherwise the reason the process cannot do its work yet.
using ReadinessCheck = std::function<std::string()>;
// GET /healthz → 200 as soon as the server listens; GET /readyz → 200 or 503 with the reason.
void register_health_routes(httplib::Server& server, ReadinessCheck readiness);

// GET /metrics: the process's Prometheus metrics (common/metrics.h).
void register_metrics_route(httplib::Server& server);

// Binds host:port (port 0 = any free port); returns the bound port or throws std::runtime_error.
// The listen backlog is raised to `backlog` (cpp-httplib's own is 5: under a burst of
// connections the kernel then drops handshakes and clients stall for seconds).
int bind_server(httplib::Server& server, const std::string& host, int port, int backlog = 4096);

// Raises the backlog of this process's listening socket on `port`; false if none was found.
bool raise_listen_backlog(int port, int backlog);

}  // namespace feedpipe
