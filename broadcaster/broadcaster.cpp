#include "broadcaster/broadcaster.h"

#include <spdlog/spdlog.h>

#include "broadcaster/api_event_source.h"
#include "common/config.h"
#include "common/db.h"
#include "common/migrations.h"

namespace feedpipe {

namespace {

std::shared_ptr<EventSource> make_source(const BroadcasterSettings& s) {
  Broadcaster::check_source(s);
  if (!s.db_path.empty()) return std::make_shared<SqliteEventSource>(s.db_path);
  ApiSourceSettings api;
  api.url = s.api_url;
  api.connect_timeout = s.api_connect_timeout;
  api.read_timeout = s.api_timeout;
  api.stream_token_secret = s.stream_token_secret;
  return std::make_shared<ApiEventSource>(std::move(api));
}

}  // namespace

void Broadcaster::check_source(const BroadcasterSettings& s) {
  if (s.db_path.empty() == s.api_url.empty())
    throw ConfigError(std::string("a broadcaster needs exactly one of --db (the SQLite file, on the database's host) "
                                  "and --api (a producer's URL, e.g. http://127.0.0.1:8080); ") +
                      (s.db_path.empty() ? "neither is set" : "both are set"));
}

Broadcaster::Broadcaster(BroadcasterSettings settings)
    : settings_(std::move(settings)),
      source_(make_source(settings_)),
      hub_({settings_.db_path, settings_.sweep_interval, source_}) {}

Broadcaster::~Broadcaster() { stop(); }

void Broadcaster::start() {
  if (!settings_.db_path.empty()) {
    Database db(settings_.db_path);
    apply_migrations(db);
  }
  spdlog::info("broadcaster reads batch history and gaps from the {}", source_->describe());
  reader_ = std::make_unique<EventReader>(settings_.kafka,
                                          [this](const EventMessage& e) { hub_.on_event(e); });
  hub_.start();
  reader_->start();
}

void Broadcaster::stop() {
  hub_.stop();
  if (reader_) reader_->stop(settings_.reader_close_timeout);
}

void Broadcaster::register_routes(httplib::Server& server) {
  register_stream_routes(server, hub_,
                         {settings_.heartbeat, settings_.retry_ms, settings_.poll_page_limit,
                          settings_.stream_token_secret});
}

std::string Broadcaster::readiness() const {
  if (!reader_ || !reader_->ready()) return "not reading the events topic yet";
  return source_->readiness();
}

}  // namespace feedpipe
