#include "broadcaster/broadcaster.h"

#include "common/db.h"
#include "common/migrations.h"

namespace feedpipe {

Broadcaster::Broadcaster(BroadcasterSettings settings)
    : settings_(std::move(settings)), hub_({settings_.db_path, settings_.sweep_interval}) {}

Broadcaster::~Broadcaster() { stop(); }

void Broadcaster::start() {
  {
    Database db(settings_.db_path);
    apply_migrations(db);
  }
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

bool Broadcaster::ready() const { return reader_ && reader_->ready(); }

}  // namespace feedpipe
