#include "common/http.h"

#include "common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <stdexcept>

namespace feedpipe {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

void send_rate_limited(httplib::Response& res, int retry_after_s, const std::string& message) {
  res.set_header("Retry-After", std::to_string(std::max(1, retry_after_s)));
  send_error(res, 429, "rate_limited", message);
}

std::string client_address(const httplib::Request& req, const TrustedProxies& proxies) {
  return proxies.client_address(req.remote_addr, req.get_header_value("X-Forwarded-For"));
}

void enable_cors(httplib::Server& server, const CorsPolicy& policy) {
  if (!policy.enabled()) return;
  server.set_pre_routing_handler([policy](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "OPTIONS") return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("Allow", "GET, POST, OPTIONS");
    if (!req.has_header("Origin")) {
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    auto origin = policy.allowed(req.get_header_value("Origin"));
    if (!origin) {
      res.set_header("Vary", "Origin");
      send_error(res, 403, "origin_not_allowed", "this origin may not call the API (see --cors-origins)");
      return httplib::Server::HandlerResponse::Handled;
    }
    for (const auto& [name, value] : CorsPolicy::preflight_headers(*origin)) res.set_header(name, value);
    res.status = 204;
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_post_routing_handler([policy](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "OPTIONS" || !req.has_header("Origin")) return;
    if (auto origin = policy.allowed(req.get_header_value("Origin")))
      for (const auto& [name, value] : CorsPolicy::response_headers(*origin)) res.set_header(name, value);
    else
      res.set_header("Vary", "Origin");
  });
}

std::unique_ptr<httplib::Server> make_server(const HttpServerSettings& settings) {
  auto server = std::make_unique<httplib::Server>();
  int threads = settings.threads;
  server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server->set_payload_max_length(settings.max_body_bytes);
  server->set_keep_alive_max_count(static_cast<size_t>(settings.keep_alive_max_count));
  server->set_read_timeout(settings.read_timeout_s, 0);
  server->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 404: send_error(res, 404, "not_found", "no such resource: " + req.path); break;
      case 405: send_error(res, 405, "method_not_allowed", req.method + " is not allowed on " + req.path); break;
      case 413: send_error(res, 413, "body_too_large", "the request body exceeds the server's limit"); break;
      case 400: send_error(res, 400, "bad_request", "the request could not be read"); break;
      default: send_error(res, res.status, "error", "HTTP " + std::to_string(res.status)); break;
    }
  });
  server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, "internal", what);
  });
  return server;
}

void refuse_other_methods(httplib::Server& server, const std::string& pattern,
                          const std::vector<std::string>& allowed) {
  std::string allow;
  for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) allow += ", HEAD";
  auto refuse = [allow](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allow);
    send_error(res, 405, "method_not_allowed",
               req.method + " is not allowed on " + req.path + "; allowed: " + allow);
  };
  auto allowed_method = [&](const char* m) {
    return std::find(allowed.begin(), allowed.end(), m) != allowed.end();
  };
  if (!allowed_method("POST")) server.Post(pattern, refuse);
  if (!allowed_method("PUT")) server.Put(pattern, refuse);
  if (!allowed_method("DELETE")) server.Delete(pattern, refuse);
  if (!allowed_method("PATCH")) server.Patch(pattern, refuse);
}

void register_health_routes(httplib::Server& server, ReadinessCheck readiness) {
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  server.Get("/readyz", [readiness](const httplib::Request&, httplib::Response& res) {
    std::string reason = readiness ? readiness() : "";
    if (reason.empty())
      send_json(res, 200, {{"status", "ready"}});
    else
      send_json(res, 503, {{"status", "not_ready"}, {"reason", reason}});
  });
}

void register_metrics_route(httplib::Server& server) {
  server.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics::render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

int bind_server(httplib::Server& server, const std::string& host, int port, int backlog) {
  if (port == 0) {
    port = server.bind_to_any_port(host.c_str());
    if (port <= 0) throw std::runtime_error("cannot listen on " + host + ": no free port");
  } else if (!server.bind_to_port(host.c_str(), port)) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) +
                             " (address in use or not available)");
  }
  raise_listen_backlog(port, backlog);
  return port;
}

bool raise_listen_backlog(int port, int backlog) {
  // cpp-httplib 0.11.4 does not expose its socket: find it among this process's descriptors.
  bool found = false;
  for (int fd = 0; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int bound = addr.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
              : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                           : -1;
    if (bound == port && ::listen(fd, backlog) == 0) found = true;
  }
  return found;
}

}  // namespace feedpipe
