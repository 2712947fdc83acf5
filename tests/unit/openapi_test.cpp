// docs/openapi.json (compiled in, served at /openapi.json): a valid OpenAPI 3.0 skeleton that
// covers DESIGN.md's HTTP contract, with every $ref resolving.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <regex>
#include <set>

#include "producer/web_routes.h"

namespace feedpipe {
namespace {

nlohmann::json document() {
  auto doc = nlohmann::json::parse(producer::openapi_document(), nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << "docs/openapi.json is not JSON";
  return doc;
}

TEST(OpenApi, IsAnOpenApi3Document) {
  auto doc = document();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["openapi"].get<std::string>().rfind("3.0.", 0), 0u);
  EXPECT_TRUE(doc["info"]["title"].is_string());
  EXPECT_TRUE(doc["info"]["version"].is_string());
  EXPECT_TRUE(doc["paths"].is_object());
}

TEST(OpenApi, DescribesEveryEndpointOfTheContract) {
  auto doc = document();
  const std::vector<std::pair<std::string, std::string>> contract{
      {"/v1/batches", "post"},          {"/v1/batches", "get"},      {"/v1/batches/{id}", "get"},
      {"/v1/batches/{id}/events", "get"}, {"/v1/events", "get"}, {"/v1/feeds/{id}", "get"}, {"/v1/feeds/{id}/items", "get"},
      {"/healthz", "get"},              {"/readyz", "get"},          {"/metrics", "get"},
      {"/", "get"},                     {"/batches/{id}", "get"},    {"/openapi.json", "get"}};
  for (const auto& [path, method] : contract) {
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    ASSERT_TRUE(doc["paths"][path].contains(method)) << method << " " << path;
    const auto& op = doc["paths"][path][method];
    EXPECT_TRUE(op["responses"].is_object() && !op["responses"].empty()) << method << " " << path;
    // Each {param} of the path template is declared as a path parameter.
    std::regex param(R"(\{([^}]+)\})");
    for (std::sregex_iterator it(path.begin(), path.end(), param), end; it != end; ++it) {
      bool declared = false;
      for (const auto& p : op.value("parameters", nlohmann::json::array()))
        declared |= p["in"] == "path" && p["name"] == (*it)[1].str() && p["required"] == true;
      EXPECT_TRUE(declared) << (*it)[1].str() << " of " << path;
    }
  }
  // The schemas the contract names.
  for (const char* schema : {"BatchRequest", "BatchAccepted", "BatchSnapshot", "Job", "EventData", "EventPage",
                             "Error", "FeedState", "ItemsPage", "BatchList"})
    EXPECT_TRUE(doc["components"]["schemas"].contains(schema)) << schema;
  // Refusals answer the error body.
  EXPECT_EQ(doc["paths"]["/v1/batches"]["post"]["responses"]["413"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error");
}

// DESIGN.md's access statuses, each off until configured: 401 with WWW-Authenticate: Bearer
// without a valid API token; 403 for a missing or wrong stream token (then POST /v1/batches
// answers stream_token) or a refused CORS origin; 429 with Retry-After past a rate limit.
TEST(OpenApi, AgreesWithTheAccessStatusesOfTheContract) {
  auto doc = document();
  const auto& paths = doc["paths"];
  const auto& submit = paths["/v1/batches"]["post"]["responses"];
  EXPECT_TRUE(submit["401"]["headers"].contains("WWW-Authenticate"));
  EXPECT_TRUE(submit["429"]["headers"].contains("Retry-After"));
  EXPECT_EQ(doc["components"]["securitySchemes"]["apiToken"]["scheme"], "bearer");
  EXPECT_TRUE(paths["/v1/batches"]["post"]["security"].is_array());
  EXPECT_TRUE(doc["components"]["schemas"]["BatchAccepted"]["properties"].contains("stream_token"));
  const auto& events = paths["/v1/batches/{id}/events"]["get"]["responses"];
  EXPECT_TRUE(events.contains("403"));
  EXPECT_TRUE(events["429"]["headers"].contains("Retry-After"));
  for (const char* path : {"/v1/batches", "/v1/batches/{id}/events"}) {
    ASSERT_TRUE(paths[path].contains("options")) << path;
    EXPECT_TRUE(paths[path]["options"]["responses"].contains("204")) << path;
    EXPECT_TRUE(paths[path]["options"]["responses"].contains("403")) << path;
  }
  const std::string about = doc["info"]["description"];
  for (const char* status : {"`401`", "`403`", "`429`", "stream_token", "Retry-After", "WWW-Authenticate: Bearer"})
    EXPECT_NE(about.find(status), std::string::npos) << status;
}

TEST(OpenApi, EveryRefResolvesAndEverySchemaIsUsed) {
  auto doc = document();
  std::set<std::string> refs;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& node) {
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (it.key() == "$ref" && it->is_string()) refs.insert(it->get<std::string>());
        walk(*it);
      }
    } else if (node.is_array()) {
      for (const auto& v : node) walk(v);
    }
  };
  walk(doc);
  ASSERT_FALSE(refs.empty());
  for (const auto& ref : refs) {
    ASSERT_EQ(ref.rfind("#/", 0), 0u) << "only local references: " << ref;
    nlohmann::json::json_pointer pointer(ref.substr(1));
    EXPECT_TRUE(doc.contains(pointer)) << "unresolved $ref " << ref;
  }
  for (auto it = doc["components"]["schemas"].begin(); it != doc["components"]["schemas"].end(); ++it)
    EXPECT_TRUE(refs.count("#/components/schemas/" + it.key())) << "unused schema " << it.key();
}

}  // namespace
}  // namespace feedpipe
