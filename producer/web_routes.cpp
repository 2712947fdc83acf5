#include "producer/web_routes.h"

#include <string>

#include "common/embedded.h"
#include "common/http.h"

namespace feedpipe::producer {
namespace {

const EmbeddedFile* find_web_file(const std::string& name) {
  for (const auto& f : feedpipe_embedded_web())
    if (f.name == name) return &f;
  return nullptr;
}

std::string content_type_of(const std::string& name) {
  auto ends_with = [&](const char* ext) {
    std::string e(ext);
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void serve(httplib::Response& res, const std::string& name) {
  const EmbeddedFile* f = find_web_file(name);
  if (!f) return send_error(res, 404, "not_found", "no such file: " + name);
  res.set_header("Cache-Control", "no-cache");
  res.set_content(std::string(f->content), content_type_of(name));
}

// The front page, its form marked when submitting needs a token (web/index.js reads the mark).
std::string front_page(bool api_tokens) {
  const EmbeddedFile* f = find_web_file("index.html");
  if (!f) return {};
  std::string page(f->content);
  const std::string off = "data-api-tokens=\"off\"";
  if (size_t at = page.find(off); api_tokens && at != std::string::npos)
    page.replace(at, off.size(), "data-api-tokens=\"on\"");
  return page;
}

}  // namespace

std::string_view openapi_document() {
  for (const auto& f : feedpipe_embedded_docs())
    if (f.name == "openapi.json") return f.content;
  return {};
}

void register_web_routes(httplib::Server& server, bool api_tokens) {
  server.Get("/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(openapi_document()), "application/json");
  });
  server.Get("/openapi.yaml", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(openapi_document()), "application/yaml");
  });
  server.Get("/", [page = front_page(api_tokens)](const httplib::Request&, httplib::Response& res) {
    if (page.empty()) return send_error(res, 404, "not_found", "no such file: index.html");
    res.set_header("Cache-Control", "no-cache");
    res.set_content(page, "text/html; charset=utf-8");
  });
  server.Get(R"(/batches/([^/]+))", [](const httplib::Request&, httplib::Response& res) {
    serve(res, "batch.html");
  });
  server.Get(R"(/feeds/(\d+))", [](const httplib::Request&, httplib::Response& res) { serve(res, "feed.html"); });
  server.Get(R"(/assets/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    serve(res, req.matches[1]);
  });
}

}  // namespace feedpipe::producer
