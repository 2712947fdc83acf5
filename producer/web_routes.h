#pragma once
// The browser page (web/, compiled into the binary): GET / to submit feeds and GET /batches/{id}
// to watch one batch live. Served by the producer, so that behind one front the page, the API
// and the streams share an origin. Also the API's description, docs/openapi.json (compiled in):
// GET /openapi.json, and GET /openapi.yaml (the same document: JSON is YAML 1.2).
#include <httplib.h>

#include <string_view>

namespace feedpipe::producer {

// `api_tokens`: POST /v1/batches needs a bearer token, so the submit form asks for one.
void register_web_routes(httplib::Server& server, bool api_tokens = false);

// The OpenAPI document compiled into the binary.
std::string_view openapi_document();

}  // namespace feedpipe::producer
