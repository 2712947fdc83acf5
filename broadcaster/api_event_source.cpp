#include "broadcaster/api_event_source.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "common/config.h"
#include "common/stream_token.h"

namespace feedpipe {
namespace {

// Percent-encodes everything but RFC 3986's unreserved characters (batch ids are plain already).
std::string encode_component(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string error_text(httplib::Error e) { return "no answer (" + httplib::to_string(e) + " error)"; }

}  // namespace

ApiEventSource::ApiEventSource(ApiSourceSettings settings) : settings_(std::move(settings)) {
  const std::string& url = settings_.url;
  const auto scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme != "http" && scheme != "https")
    throw ConfigError("--api must be an http:// or https:// URL of a producer (e.g. http://127.0.0.1:8080), not '" +
                      url + "'");
  const size_t authority = scheme_end + 3;
  const size_t path = url.find('/', authority);
  std::string host_port = url.substr(authority, path == std::string::npos ? std::string::npos : path - authority);
  if (host_port.empty() || host_port.find_first_of("?#@ ") != std::string::npos)
    throw ConfigError("--api URL '" + url + "' has no usable host");
  origin_ = scheme + "://" + host_port;
  if (path != std::string::npos) {
    prefix_ = url.substr(path);
    if (prefix_.find_first_of("?#") != std::string::npos)
      throw ConfigError("--api URL '" + url + "' must not carry a query or fragment");
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  }
  // The client parses host and port itself; a malformed authority shows as an invalid client.
  if (!httplib::Client(origin_).is_valid()) throw ConfigError("--api URL '" + url + "' is not usable");
}

ApiEventSource::~ApiEventSource() = default;

std::unique_ptr<httplib::Client> ApiEventSource::new_client() {
  {
    std::lock_guard lock(mu_);
    ++requests_;
  }
  auto client = std::make_unique<httplib::Client>(origin_);
  const auto connect = settings_.connect_timeout.count(), read = settings_.read_timeout.count();
  client->set_connection_timeout(connect / 1000, (connect % 1000) * 1000);
  client->set_read_timeout(read / 1000, (read % 1000) * 1000);
  client->set_write_timeout(read / 1000, (read % 1000) * 1000);
  // No keep-alive: cpp-httplib gives each open connection a thread of the producer's small pool,
  // and idle connections of every broadcaster would hold them. Reads are few (one per batch, plus
  // gaps and sweeps), so a new connection each costs little.
  client->set_keep_alive(false);
  return client;
}

SourceUnavailable ApiEventSource::failed(const std::string& why) {
  std::lock_guard lock(mu_);
  backoff_ = down_ ? std::min(backoff_ * 2, settings_.retry_max) : settings_.retry_min;
  retry_at_ = std::chrono::steady_clock::now() + backoff_;
  if (!down_) spdlog::warn("the API at {} cannot be read: {} (retrying with backoff; streams keep going on Kafka's events)",
                           settings_.url, why);
  down_ = true;
  last_error_ = why;
  return SourceUnavailable("the API at " + settings_.url + " cannot be read: " + why);
}

void ApiEventSource::succeeded() {
  std::lock_guard lock(mu_);
  if (down_) spdlog::info("the API at {} answers again", settings_.url);
  down_ = false;
  backoff_ = std::chrono::milliseconds(0);
}

std::optional<EventPage> ApiEventSource::read_after(const std::string& batch_id, int64_t after_seq, int) {
  {
    std::lock_guard lock(mu_);
    if (down_ && std::chrono::steady_clock::now() < retry_at_)
      throw SourceUnavailable("the API at " + settings_.url + " cannot be read (" + last_error_ +
                              "); retrying after a backoff");
  }
  std::string path = prefix_ + "/v1/batches/" + encode_component(batch_id) +
                     "/events?after=" + std::to_string(std::max<int64_t>(after_seq, 0));
  if (!settings_.stream_token_secret.empty())
    path += "&token=" + stream_token(settings_.stream_token_secret, batch_id);
  auto res = new_client()->Get(path, {{"Accept", "application/json"}});
  if (!res) throw failed(error_text(res.error()));
  if (res->status == 404) {
    succeeded();
    return std::nullopt;
  }
  if (res->status != 200) {
    std::string why = "GET " + path.substr(0, path.find("&token=")) + " answered " + std::to_string(res->status);
    if (res->status == 403) {
      // A configuration mistake, not an outage: the secrets differ. Log it loudly, every time.
      spdlog::error("{}: give the broadcaster the producer's --stream-token-secret", why);
    }
    throw failed(why);
  }
  try {
    auto page = event_page_from_json(nlohmann::json::parse(res->body), batch_id);
    succeeded();
    return page;
  } catch (const std::exception& e) {
    throw failed(std::string("GET ") + prefix_ + "/v1/batches/" + batch_id + "/events: " + e.what());
  }
}

std::string ApiEventSource::readiness() {
  {
    std::lock_guard lock(mu_);
    if (probed_ && std::chrono::steady_clock::now() - probed_at_ < std::chrono::seconds(1)) return probe_result_;
  }
  auto res = new_client()->Get(prefix_ + "/healthz");
  std::string result;
  if (!res)
    result = "the API at " + settings_.url + " does not answer: " + error_text(res.error());
  else if (res->status != 200)
    result = "the API at " + settings_.url + " answers /healthz with " + std::to_string(res->status);
  std::lock_guard lock(mu_);
  probed_ = true;
  probed_at_ = std::chrono::steady_clock::now();
  probe_result_ = result;
  return result;
}

uint64_t ApiEventSource::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

}  // namespace feedpipe
