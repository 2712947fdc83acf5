#include "broadcaster/event_source.h"

#include "common/db_pool.h"

namespace feedpipe {

std::optional<EventPage> SqliteEventSource::read_after(const std::string& batch_id, int64_t after_seq,
                                                       int limit) {
  return read_event_page(thread_db(db_path_), batch_id, after_seq, limit);
}

}  // namespace feedpipe
