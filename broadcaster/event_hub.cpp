#include "broadcaster/event_hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>

#include "common/thread_name.h"

namespace feedpipe {
namespace hub_detail {

// Where a watched batch's history stands.
enum class History { unread, loading, loaded, unknown, failed };

// One watched batch. Invariant: events[i].seq == i + 1 (the cache is gap-free from seq 1).
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  History history = History::unread;  // until loaded, Kafka events are left to the history read
  std::string load_error;             // why the history read failed (History::failed)
  bool reading = false;               // a read of the source is in flight (one at a time)
  bool read_again = false;            // an arrival beyond a gap came during that read
  bool completed = false;             // batch.completed is held
  std::vector<EventMessage> events;
  std::map<int64_t, EventMessage> early;  // Kafka arrivals beyond a gap, until it is filled

  bool loaded() const { return history == History::loaded; }
  int64_t last() const { return static_cast<int64_t>(events.size()); }

  void push(EventMessage&& e) {
    if (e.type == "batch.completed") completed = true;
    events.push_back(std::move(e));
  }

  // Appends the events that continue the sequence (stopping at the first gap), then the held
  // early arrivals that now continue it. Caller holds mu.
  bool append_in_order(std::vector<EventMessage>&& more) {
    const int64_t before = last();
    for (auto& e : more) {
      if (e.seq <= last()) continue;
      if (e.seq != last() + 1) break;
      push(std::move(e));
    }
    while (!early.empty() && early.begin()->first <= last() + 1) {
      auto node = early.extract(early.begin());
      if (node.key() == last() + 1) push(std::move(node.mapped()));
    }
    return last() > before;
  }
};

struct Core {
  explicit Core(std::shared_ptr<EventSource> s) : source(std::move(s)) {}

  const std::shared_ptr<EventSource> source;
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> history_reads{0};
  std::atomic<uint64_t> source_reads{0};
  std::mutex listener_mu;  // guards listeners and next_listener_id
  std::map<uint64_t, EventHub::GrowthListener> listeners;
  uint64_t next_listener_id = 1;

  void notify_growth(const std::string& batch_id) {
    std::lock_guard lock(listener_mu);
    for (auto& [id, listener] : listeners) listener(batch_id);
  }

  struct Watched {
    std::shared_ptr<Channel> channel;
    int subscribers = 0;
  };
  mutable std::mutex mu;  // guards channels
  std::unordered_map<std::string, Watched> channels;

  std::shared_ptr<Channel> find(const std::string& batch_id) {
    std::lock_guard lock(mu);
    auto it = channels.find(batch_id);
    return it == channels.end() ? nullptr : it->second.channel;
  }

  std::shared_ptr<Channel> join(const std::string& batch_id) {
    std::lock_guard lock(mu);
    Watched& w = channels[batch_id];
    if (!w.channel) w.channel = std::make_shared<Channel>();
    ++w.subscribers;
    return w.channel;
  }

  void leave(const std::string& batch_id) {
    std::lock_guard lock(mu);
    auto it = channels.find(batch_id);
    if (it != channels.end() && --it->second.subscribers == 0) channels.erase(it);
  }

  struct Fill {
    bool grew = false;
    bool unknown = false;  // the source knows no such batch
  };

  // Reads every event after the last one held, page by page, with `lock` (on ch.mu) released
  // while the source is read. Caller holds the lock and no read is in flight (!ch.reading);
  // returns with the lock held. Throws what the source throws.
  Fill fill(std::unique_lock<std::mutex>& lock, Channel& ch, const std::string& batch_id) {
    constexpr int kPage = 1000;
    struct Reading {  // ends the read, also when the source throws
      Channel& ch;
      std::unique_lock<std::mutex>& lock;
      ~Reading() {
        if (!lock.owns_lock()) lock.lock();
        ch.reading = false;
        ch.cv.notify_all();
      }
    } reading{ch, lock};
    ch.reading = true;
    Fill out;
    while (true) {
      ch.read_again = false;
      const int64_t from = ch.last();
      lock.unlock();
      ++source_reads;
      std::optional<EventPage> page = source->read_after(batch_id, from, kPage);
      lock.lock();
      if (!page) {
        out.unknown = true;
        return out;
      }
      const size_t n = page->events.size();
      const bool more_pages = !page->done && n >= static_cast<size_t>(kPage);
      out.grew |= ch.append_in_order(std::move(page->events));
      if (ch.completed || ch.last() <= from) return out;  // done, or the source has nothing newer
      if (more_pages) continue;
      // An arrival beyond what this read saw: its gap was committed before it, so read on.
      if (ch.read_again || !ch.early.empty()) continue;
      return out;
    }
  }

  std::vector<std::pair<std::string, std::shared_ptr<Channel>>> snapshot() const {
    std::lock_guard lock(mu);
    std::vector<std::pair<std::string, std::shared_ptr<Channel>>> out;
    out.reserve(channels.size());
    for (const auto& [id, w] : channels) out.emplace_back(id, w.channel);
    return out;
  }
};

}  // namespace hub_detail

using hub_detail::Channel;
using hub_detail::History;

namespace {

// A source that is down is logged once by the source itself; other failures here.
void log_read_failure(const std::string& batch_id, const char* what, const std::exception& e) {
  if (dynamic_cast<const SourceUnavailable*>(&e))
    spdlog::debug("batch {}: {} cannot read events: {} (the sweep will retry)", batch_id, what, e.what());
  else
    spdlog::warn("batch {}: {} cannot read events: {} (the sweep will retry)", batch_id, what, e.what());
}

}  // namespace

Subscription::Subscription(std::shared_ptr<hub_detail::Core> core, std::string batch_id,
                           std::shared_ptr<Channel> channel, int64_t after_seq)
    : core_(std::move(core)),
      batch_id_(std::move(batch_id)),
      channel_(std::move(channel)),
      cursor_(std::max<int64_t>(after_seq, 0)) {}

Subscription::~Subscription() { core_->leave(batch_id_); }

std::vector<EventMessage> Subscription::next(std::chrono::milliseconds timeout) {
  Channel& ch = *channel_;
  std::unique_lock lock(ch.mu);
  if (ch.completed && cursor_ >= ch.last()) return {};
  ch.cv.wait_for(lock, timeout, [&] { return ch.last() > cursor_ || core_->stopped.load(); });
  std::vector<EventMessage> out;
  if (ch.last() > cursor_) {
    out.assign(ch.events.begin() + cursor_, ch.events.end());
    cursor_ = ch.last();
  }
  return out;
}

bool Subscription::finished() const {
  std::lock_guard lock(channel_->mu);
  return channel_->completed && cursor_ >= channel_->last();
}

bool Subscription::stopped() const { return core_->stopped.load(); }

EventHub::EventHub(EventHubSettings settings)
    : settings_(std::move(settings)),
      core_(std::make_shared<hub_detail::Core>(settings_.source ? settings_.source
                                                                : std::make_shared<SqliteEventSource>(settings_.db_path))) {}

EventHub::~EventHub() { stop(); }

void EventHub::start() {
  std::lock_guard lock(sweep_mu_);
  if (sweeper_.joinable() || sweep_stop_) return;
  sweeper_ = named_thread("fp-hub-sweep", [this] {
    std::unique_lock lock(sweep_mu_);
    auto next_sweep = std::chrono::steady_clock::now() + settings_.sweep_interval;
    while (!sweep_stop_) {
      sweep_cv_.wait_until(lock, next_sweep, [this] { return sweep_stop_ || !gap_queue_.empty(); });
      if (sweep_stop_) break;
      if (!gap_queue_.empty()) {
        std::vector<std::string> batches;
        batches.swap(gap_queue_);
        lock.unlock();
        fill_gaps(batches);
        lock.lock();
        continue;
      }
      if (std::chrono::steady_clock::now() < next_sweep) continue;
      lock.unlock();
      sweep();
      lock.lock();
      next_sweep = std::chrono::steady_clock::now() + settings_.sweep_interval;
    }
  });
}

void EventHub::fill_gaps(const std::vector<std::string>& batch_ids) {
  for (const std::string& batch_id : batch_ids) {
    if (core_->stopped) return;
    auto ch = core_->find(batch_id);
    if (!ch) continue;
    bool grew = false;
    {
      std::unique_lock lock(ch->mu);
      if (!ch->loaded() || ch->completed || ch->early.empty()) continue;
      if (ch->reading) {
        ch->read_again = true;
        continue;
      }
      try {
        grew = core_->fill(lock, *ch, batch_id).grew;
        if (grew) ch->cv.notify_all();
      } catch (const std::exception& e) {
        log_read_failure(batch_id, "a gap read", e);
      }
    }
    if (grew) core_->notify_growth(batch_id);
  }
}

void EventHub::stop() {
  {
    std::lock_guard lock(sweep_mu_);
    sweep_stop_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable() && sweeper_.get_id() != std::this_thread::get_id()) sweeper_.join();
  core_->stopped = true;
  // Taking each channel's mutex before notifying means no waiter can miss the flag.
  for (auto& [id, ch] : core_->snapshot()) {
    std::lock_guard lock(ch->mu);
    ch->cv.notify_all();
  }
}

std::shared_ptr<Subscription> EventHub::subscribe(const std::string& batch_id, int64_t after_seq) {
  // On every early return or throw, the subscription unsubscribes as it goes.
  std::shared_ptr<Subscription> sub(
      new Subscription(core_, batch_id, core_->join(batch_id), after_seq));
  Channel& ch = *sub->channel_;
  std::unique_lock lock(ch.mu);
  if (ch.history == History::loading) {  // another subscriber reads the history: share its read
    ch.cv.wait(lock, [&] { return ch.history != History::loading || core_->stopped.load(); });
    if (ch.history == History::unknown) return nullptr;
    if (ch.history == History::failed) throw SourceUnavailable(ch.load_error);
    return sub;  // loaded (or the hub stops: the subscription reports stopped())
  }
  if (ch.loaded()) return sub;
  // Unread, or the read of an earlier subscriber that has gone found nothing or failed: read.
  ch.history = History::loading;
  ++core_->history_reads;
  try {
    auto fill = core_->fill(lock, ch, batch_id);
    ch.history = fill.unknown ? History::unknown : History::loaded;
  } catch (const std::exception& e) {
    ch.history = History::failed;
    ch.load_error = e.what();
    ch.cv.notify_all();
    throw;
  }
  ch.cv.notify_all();
  if (ch.history == History::unknown) return nullptr;
  return sub;
}

void EventHub::on_event(const EventMessage& event) {
  auto ch = core_->find(event.batch_id);
  if (!ch) return;  // nobody watches this batch
  std::unique_lock lock(ch->mu);
  if (event.seq <= ch->last() || ch->completed) return;
  if (ch->history == History::loading) {
    // The history being read may miss it (committed after the read): hold it for the loader.
    ch->early.emplace(event.seq, event);
    return;
  }
  // Unread, unknown or failed: nobody is being served from this channel.
  if (!ch->loaded()) return;
  bool grew = false;
  if (event.seq == ch->last() + 1) {
    grew = ch->append_in_order({event});
  } else {
    // An earlier seq has not arrived (yet): the source has every seq up to this one.
    ch->early.emplace(event.seq, event);
    if (ch->reading) {
      ch->read_again = true;  // the read in flight reads on
      return;
    }
    spdlog::debug("batch {}: event {} arrived after {}, reading the gap", event.batch_id, event.seq,
                  ch->last());
    if (core_->source->remote()) {  // a network read must not hold up Kafka's other events
      lock.unlock();
      {
        std::lock_guard queue_lock(sweep_mu_);
        gap_queue_.push_back(event.batch_id);
      }
      sweep_cv_.notify_all();
      return;
    }
    try {
      grew = core_->fill(lock, *ch, event.batch_id).grew;
    } catch (const std::exception& e) {
      log_read_failure(event.batch_id, "a gap read", e);
    }
  }
  if (grew) {
    ch->cv.notify_all();
    lock.unlock();
    core_->notify_growth(event.batch_id);
  }
}

void EventHub::sweep() {
  for (auto& [batch_id, ch] : core_->snapshot()) {
    if (core_->stopped) return;
    bool grew = false;
    {
      std::unique_lock lock(ch->mu);
      if (!ch->loaded() || ch->completed || ch->reading) continue;  // a read in flight does the work
      try {
        grew = core_->fill(lock, *ch, batch_id).grew;
        if (grew) ch->cv.notify_all();
      } catch (const std::exception& e) {
        log_read_failure(batch_id, "the sweep", e);
      }
    }
    if (grew) core_->notify_growth(batch_id);
  }
}

uint64_t EventHub::add_growth_listener(GrowthListener listener) {
  std::lock_guard lock(core_->listener_mu);
  const uint64_t id = core_->next_listener_id++;
  core_->listeners.emplace(id, std::move(listener));
  return id;
}

void EventHub::remove_growth_listener(uint64_t id) {
  std::lock_guard lock(core_->listener_mu);
  core_->listeners.erase(id);
}

std::optional<EventPage> EventHub::read_page(const std::string& batch_id, int64_t after_seq,
                                             int limit) {
  return core_->source->read_after(batch_id, std::max<int64_t>(after_seq, 0), limit);
}

uint64_t EventHub::source_reads() const { return core_->source_reads.load(); }

std::string EventHub::source_readiness() { return core_->source->readiness(); }

uint64_t EventHub::history_reads() const { return core_->history_reads.load(); }

size_t EventHub::watched_batches() const {
  std::lock_guard lock(core_->mu);
  return core_->channels.size();
}

}  // namespace feedpipe
